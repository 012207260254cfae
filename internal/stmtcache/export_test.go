package stmtcache

// Len is how many statements c keeps.
func (h *Cache) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.stmts)
}
