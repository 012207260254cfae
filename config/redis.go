package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// The topologies REDIS_MODE names.
const (
	RedisSingle   = "single"
	RedisCluster  = "cluster"
	RedisSentinel = "sentinel"
)

// clusterReload is how often a cluster client reads the cluster's
// topology again while it is in use: one CLUSTER SLOTS a second.
const clusterReload = time.Second

// RedisClient returns a constructor of the client REDIS_URL and REDIS_MODE
// describe, or an error that names both when they do not fit together.
// Load calls it so that a bad URL or mode stops the server before it
// starts; serve calls it again to open the client. Without REDIS_URL it
// returns nil and no error. Every client is a redis.UniversalClient, so
// the rest of the server does not know which topology it talks to.
func (c *Config) RedisClient() (func() redis.UniversalClient, error) {
	mode := c.RedisMode
	if mode == "" {
		mode = RedisSingle
	}
	var open func() redis.UniversalClient
	var err error
	switch mode {
	case RedisSingle:
		var o *redis.Options
		if o, err = redis.ParseURL(c.RedisURL); err == nil {
			open = func() redis.UniversalClient { return redis.NewClient(o) }
		}
	case RedisCluster:
		var o *redis.ClusterOptions
		if o, err = redis.ParseClusterURL(c.RedisURL); err == nil {
			// go-redis learns of a failover only from a MOVED reply or
			// its periodic reload (60 s by default); a dead master sends
			// no MOVED, so its slots' commands would go on failing against
			// it for up to a minute after its replica took over.
			o.ClusterStateReloadInterval = clusterReload
			open = func() redis.UniversalClient { return redis.NewClusterClient(o) }
		}
	case RedisSentinel:
		var o *redis.FailoverOptions
		if o, err = redis.ParseFailoverURL(c.RedisURL); err == nil && o.MasterName == "" {
			err = errors.New("the sentinels' URL needs master_name=NAME, the name the sentinels monitor the master by")
		}
		if err == nil {
			open = func() redis.UniversalClient { return redis.NewFailoverClient(o) }
		}
	default:
		return nil, fmt.Errorf("config: REDIS_MODE must be single, cluster or sentinel, got %q", c.RedisMode)
	}
	if c.RedisURL == "" {
		return nil, nil
	}
	if err != nil {
		// The URL may hold a password: the error names the setting, not the value.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("config: REDIS_URL does not read as REDIS_MODE=%s expects: %w", mode, err)
	}
	return open, nil
}
