package middleware

import "github.com/ThreeDotsLabs/watermill/message"

// A Watermill router runs every delivery on a new goroutine, whose stack
// starts at 2 KiB. The canonical stack's layers take about 1.5 KiB of
// stack on the success path, so the goroutine's stack grows, and a stack
// grows by copying: the runtime walks and adjusts every frame on it. When
// that happens deep in the stack (in the breaker, ten frames down) it cost
// more than all of the stack's own work (a router over GoChannel ran at
// 0.7x of bare, most of the difference in runtime.copystack). Making room
// once at the top, where only the router's few frames are on the stack,
// makes the same growth cheap, and the layers below then fit.

// stackRoomBytes is the frame stackRoom takes: more than what is left of a
// 2 KiB stack under the router's frames, so such a stack grows here.
const stackRoomBytes = 1024

// stackRoomMinLayers is how many filled slots make a stack deep enough to
// make room for.
const stackRoomMinLayers = 4

// withStackRoom returns h preceded, on every call, by stackRoom.
func withStackRoom(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		stackRoom(0)
		return h(msg)
	}
}

// stackRoom has a stackRoomBytes frame, so that calling it grows a small
// goroutine stack while the stack is still shallow. It costs the zeroing
// of its frame when the stack is already large enough.
//
//go:noinline
func stackRoom(i int) byte {
	var pad [stackRoomBytes]byte
	return pad[i%stackRoomBytes]
}
