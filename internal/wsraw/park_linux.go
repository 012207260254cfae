package wsraw

import (
	"sync"
	"syscall"
)

// The idle poller: one epoll set holds the sockets of parked connections,
// each armed for one readiness (EPOLLONESHOT), and one goroutine waits on
// it while any is parked. When a socket becomes readable (a frame, the
// client's close, its end), it leaves the set and its resume runs in a
// fresh goroutine. A socket is only ever closed after it has left the set
// (closing, from the Close of the net.Conn the library holds), so that
// the set never holds a descriptor number that a new socket reuses.
var idle struct {
	mu      sync.Mutex
	epfd    int // -1: epoll could not be had; parking is then refused
	parked  map[int32]*Conn
	polling bool // the poller goroutine runs
}

// idleWait is how long the poller waits for events before it looks
// whether anything is parked still: it returns once nothing is.
const idleWait = 200 // milliseconds

func park(c *Conn, resume func()) bool {
	idle.mu.Lock()
	defer idle.mu.Unlock()
	if c.closing {
		return false
	}
	if idle.parked == nil {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			fd = -1
		}
		idle.epfd, idle.parked = fd, map[int32]*Conn{}
	}
	if idle.epfd < 0 {
		return false
	}
	var err error
	if cerr := c.raw.Control(func(fd uintptr) {
		c.fd = int32(fd)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: c.fd}
		err = syscall.EpollCtl(idle.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil || err != nil {
		return false
	}
	c.resume = resume
	idle.parked[c.fd] = c
	if !idle.polling {
		idle.polling = true
		go poll()
	}
	return true
}

// closing is called before the socket closes: a parked connection leaves
// the set and resumes (its reader then finds the socket closed).
func closing(c *Conn) {
	idle.mu.Lock()
	c.closing = true
	resume := unparkLocked(c)
	idle.mu.Unlock()
	if resume != nil {
		go resume()
	}
}

// unparkLocked takes c out of the set if it is parked, and returns its
// resume (nil: it was not parked). The caller holds idle.mu.
func unparkLocked(c *Conn) func() {
	if c.resume == nil {
		return nil
	}
	_ = syscall.EpollCtl(idle.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
	delete(idle.parked, c.fd)
	resume := c.resume
	c.resume = nil
	return resume
}

// poll waits for parked sockets to become readable and resumes their
// connections; it returns when nothing is parked.
func poll() {
	var events [128]syscall.EpollEvent
	var ready []func()
	for {
		n, err := syscall.EpollWait(idle.epfd, events[:], idleWait)
		if err != nil && err != syscall.EINTR {
			n = 0 // cannot happen on a valid epoll descriptor; the parked are resumed below
		}
		idle.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if c := idle.parked[ev.Fd]; c != nil {
				ready = append(ready, unparkLocked(c))
			}
		}
		if err != nil && err != syscall.EINTR {
			for _, c := range idle.parked {
				ready = append(ready, unparkLocked(c))
			}
		}
		done := len(idle.parked) == 0
		if done {
			idle.polling = false
		}
		idle.mu.Unlock()
		for i, resume := range ready {
			go resume()
			ready[i] = nil
		}
		ready = ready[:0]
		if done {
			return
		}
	}
}
