package chaos

// Republished records that the producer published message id again after
// a publish error that may have hidden a success.
func (l *Ledger) Republished(id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(id); e != nil {
		e.republished = true
	}
}
