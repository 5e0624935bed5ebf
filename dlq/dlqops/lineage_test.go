package dlqops_test

import (
	"testing"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

func TestVerifiedReplay(t *testing.T) {
	parent := dlqops.Record{ID: "dl-p", UUID: "u0", ReplayUUID: "u2"}
	child := func(uuid, of string) dlqops.Record {
		return dlqops.Record{ID: "dl-" + uuid, UUID: uuid, Metadata: map[string]string{dlq.KeyReplayOf: of}}
	}
	events := []dlqops.Event{
		{LetterID: "dl-p", Action: dlqops.EventReplayed, ReplayUUID: "u1"},
		{LetterID: "dl-p", Action: dlqops.EventEdited, ReplayUUID: "u3"},
		{LetterID: "dl-p", Action: dlqops.EventHeld, ReplayUUID: "u4"},
		{LetterID: "dl-other", Action: dlqops.EventReplayed, ReplayUUID: "u5"},
	}
	tests := []struct {
		name  string
		child dlqops.Record
		want  bool
	}{
		{"its last replay", child("u2", "dl-p"), true},
		{"an earlier replay (event)", child("u1", "dl-p"), true},
		{"an edited replay (event)", child("u3", "dl-p"), true},
		{"a producer's claim", child("u9", "dl-p"), false},
		{"a replay's UUID claiming another parent", child("u2", "dl-q"), false},
		{"no claim", dlqops.Record{UUID: "u2"}, false},
		{"no UUID", child("", "dl-p"), false},
		{"an event that published nothing", child("u4", "dl-p"), false},
		{"another letter's event", child("u5", "dl-p"), false},
		{"the parent's own UUID", child("u0", "dl-p"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dlqops.VerifiedReplay(parent, events, tt.child); got != tt.want {
				t.Errorf("VerifiedReplay: got %v, want %v", got, tt.want)
			}
		})
	}
	if got := dlqops.VerifiedReplay(dlqops.Record{}, nil, child("", "")); got {
		t.Error("VerifiedReplay of empty records: got true, want false")
	}
}
