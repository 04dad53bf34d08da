package kiotviet

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// ErrNotFound is what Product returns for an id KiotViet does not have (deleted since).
var ErrNotFound = errors.New("kiotviet: not found")

// Product reads one product by id (GET /products/{id}), with its inventories, for a webhook whose
// payload is partial or inconsistent. A product KiotViet no longer has gives ErrNotFound.
func (c *Client) Product(ctx context.Context, id int64) (Product, error) {
	var p Product
	err := c.get(ctx, "/products/"+strconv.FormatInt(id, 10), nil, func(b []byte) error { return json.Unmarshal(b, &p) })
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return Product{}, ErrNotFound
	}
	return p, err
}
