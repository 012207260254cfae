package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// pgClient speaks Playground's HTTP API as one registered user.
type pgClient struct {
	base  string // http://host:port
	token string
	hc    *http.Client
}

func newPGClient(base string) *pgClient {
	return &pgClient{base: base, hc: &http.Client{Timeout: 60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 512}}}
}

func (c *pgClient) addr() string { return strings.TrimPrefix(c.base, "http://") }

func (c *pgClient) do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.doHeader(ctx, method, path, in, out)
	return err
}

// doHeader is do that also returns the response's headers (nil when
// no response came).
func (c *pgClient) doHeader(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.Header, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return resp.Header, json.Unmarshal(b, out)
	}
	return resp.Header, nil
}

// register creates a fresh user and keeps its access token.
func (c *pgClient) register(ctx context.Context) error {
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	email := "bench-" + strings.ToLower(rand.Text()[:10]) + "@example.com"
	if err := c.do(ctx, "POST", "/auth/register", map[string]string{"email": email, "password": "bench-password"}, &out); err != nil {
		return err
	}
	c.token = out.AccessToken
	return nil
}

// login takes a token for the user of another client (a second instance).
func (c *pgClient) useToken(token string) { c.token = token }

// createSession starts a comparison of models on prompt and returns its id.
func (c *pgClient) createSession(ctx context.Context, prompt string, models ...string) (string, error) {
	id, _, err := c.createSessionVia(ctx, prompt, models...)
	return id, err
}

// createSessionVia is createSession that also names the instance that
// created the session, and so runs it, as the balancer in front tells
// (its X-Upstream header; "" without one).
func (c *pgClient) createSessionVia(ctx context.Context, prompt string, models ...string) (id, upstream string, err error) {
	var out struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	h, err := c.doHeader(ctx, "POST", "/sessions", map[string]any{"prompt": prompt, "models": models}, &out)
	return out.Session.ID, h.Get("X-Upstream"), err
}

func (c *pgClient) cancel(ctx context.Context, id string) error {
	return c.do(ctx, "POST", "/sessions/"+id+"/cancel", nil, nil)
}

func (c *pgClient) authHeader() http.Header {
	return http.Header{"Authorization": {"Bearer " + c.token}}
}
