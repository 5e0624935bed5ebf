package p

// Exported names: F, T, T.M, T.A, I, I.Do, C, V (8); the rest is not.
func F() {}
func f() {}

type T struct {
	A, b int
	u    int
}

func (T) M() {}
func (T) m() {}

type u struct{ X int }

func (u) Y() {}

type I interface {
	Do()
	do()
}

const C, c = 1, 2

var V, v int
