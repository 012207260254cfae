package redishub

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// presenceTTL is how long an instance's viewer count for a session counts
// without being refreshed, so the counts of an instance that died fade.
const presenceTTL = 30 * time.Second

// Viewers records how many viewers of a session this instance has and
// returns the total across instances as last known. It never waits for
// Redis: the presence loop writes the count and reads the others', and
// pokes the session's local holder when the total changes.
func (b *Broker) Viewers(sid string, local int) int {
	b.mu.Lock()
	prev, had := b.local[sid]
	if local == 0 {
		delete(b.local, sid)
	} else {
		b.local[sid] = local
	}
	total := local + b.others[sid]
	b.mu.Unlock()
	if !had || prev != local {
		select {
		case b.presenceC <- sid:
		default: // the loop is behind; its periodic pass catches up
		}
	}
	return total
}

// presenceLoop owns the Redis side of presence: a hash per session with a
// field per instance ("count:expiry-ms"), written when the local count
// changes and refreshed every presenceTTL/3.
func (b *Broker) presenceLoop() {
	defer b.wg.Done()
	tick := time.NewTicker(presenceTTL / 3)
	defer tick.Stop()
	written := map[string]int{}
	for {
		pending := map[string]bool{}
		refresh := false
		select {
		case sid := <-b.presenceC:
			pending[sid] = true
		case <-tick.C:
			refresh = true
		case <-b.stop:
			return
		}
	drain:
		for {
			select {
			case sid := <-b.presenceC:
				pending[sid] = true
			default:
				break drain
			}
		}
		if refresh {
			b.mu.Lock()
			for sid := range b.local {
				pending[sid] = true
			}
			b.mu.Unlock()
			for sid := range written {
				pending[sid] = true
			}
		}
		for sid := range pending {
			b.syncPresence(sid, written, refresh)
		}
	}
}

func (b *Broker) syncPresence(sid string, written map[string]int, refresh bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b.mu.Lock()
	local := b.local[sid]
	b.mu.Unlock()
	key := b.presenceKey(sid)
	prev, had := written[sid]
	if !had || prev != local || refresh {
		var err error
		if local == 0 {
			err = b.rdb.HDel(ctx, key, b.instance).Err()
		} else {
			exp := time.Now().Add(presenceTTL).UnixMilli()
			pipe := b.rdb.Pipeline()
			pipe.HSet(ctx, key, b.instance, strconv.Itoa(local)+":"+strconv.FormatInt(exp, 10))
			pipe.Expire(ctx, key, time.Hour)
			_, err = pipe.Exec(ctx)
		}
		if err != nil {
			return // Redis is away: the local part of the count stays right
		}
		if local == 0 {
			delete(written, sid)
		} else {
			written[sid] = local
		}
		if !had || prev != local {
			_ = b.publishControl(ctx, controlMsg{Kind: "presence", SessionID: sid})
		}
	}
	all, err := b.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return
	}
	now := time.Now().UnixMilli()
	others := 0
	for inst, v := range all {
		if inst == b.instance {
			continue
		}
		n, exp, _ := strings.Cut(v, ":")
		count, _ := strconv.Atoi(n)
		if e, _ := strconv.ParseInt(exp, 10, 64); e > now {
			others += count
		}
	}
	b.mu.Lock()
	changed := b.others[sid] != others
	if others == 0 {
		delete(b.others, sid)
	} else {
		b.others[sid] = others
	}
	b.mu.Unlock()
	if changed {
		b.pokeFollower(sid)
		if h := b.handlers().Presence; h != nil {
			h(sid)
		}
	}
}
