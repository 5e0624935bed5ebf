package main

import (
	"encoding/json"
	"fmt"
)

// Order is what order intake publishes.
type Order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Phone    string `json:"phone"`
	VIP      bool   `json:"vip"`
	Amount   int    `json:"amount_cents"`
	Items    []Item `json:"items"`
}

// Item is one order line.
type Item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// decodeOrder parses an order payload.
func decodeOrder(payload []byte) (Order, error) {
	var o Order
	if err := json.Unmarshal(payload, &o); err != nil {
		return o, fmt.Errorf("malformed order: %w", err)
	}
	if o.ID == "" {
		return o, fmt.Errorf("malformed order: missing id")
	}
	return o, nil
}
