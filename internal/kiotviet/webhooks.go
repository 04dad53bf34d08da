package kiotviet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Webhook is one registration in KiotViet's webhook API (kiotviet-api.md §9). Secret is only sent.
type Webhook struct {
	ID          int64  `json:"id"`
	Type        string `json:"type"`
	URL         string `json:"url"`
	IsActive    bool   `json:"isActive"`
	RetailerID  int64  `json:"retailerId"`
	Description string `json:"description"`
}

// Webhooks lists the shop's registrations (GET /webhooks).
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var page struct {
		Data []Webhook `json:"data"`
	}
	err := c.get(ctx, "/webhooks", nil, func(b []byte) error { return json.Unmarshal(b, &page) })
	return page.Data, err
}

// RegisterWebhook registers url for one event type with a signing secret (POST /webhooks). KiotViet
// allows one registration per type: delete the old one first.
func (c *Client) RegisterWebhook(ctx context.Context, typ, url, secret, description string) (Webhook, error) {
	body, err := json.Marshal(map[string]any{"Webhook": map[string]any{"Type": typ, "Url": url, "IsActive": true,
		"Description": description, "Secret": secret}})
	if err != nil {
		return Webhook{}, err
	}
	var w Webhook
	err = c.send(ctx, http.MethodPost, "/webhooks", body, func(b []byte) error { return json.Unmarshal(b, &w) })
	return w, err
}

// DeleteWebhook removes a registration (DELETE /webhooks/{id}); one already gone is not an error.
func (c *Client) DeleteWebhook(ctx context.Context, id int64) error {
	err := c.send(ctx, http.MethodDelete, "/webhooks/"+strconv.FormatInt(id, 10), nil, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// send is a write to the API: the token, one re-authentication on 401, no retries (a write repeated
// after a lost reply could register twice; the caller lists and repairs instead).
func (c *Client) send(ctx context.Context, method, path string, body []byte, decode func([]byte) error) error {
	for reauthed := false; ; reauthed = true {
		tok, err := c.ts.Token(ctx)
		if err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
		req, err := http.NewRequestWithContext(actx, method, c.cfg.APIURL+path, bytes.NewReader(body))
		if err != nil {
			cancel()
			return errors.New("bad request URL")
		}
		req.Header.Set("Retailer", c.retailer)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "kvsync")
		resp, rb, err := send(c.cfg.HTTPClient, req, maxAPIBody)
		cancel()
		c.count(path)
		if err != nil {
			return transportError(ctx, method, path, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if decode == nil || len(bytes.TrimSpace(rb)) == 0 {
				return nil
			}
			return decode(rb)
		}
		apiErr := newAPIError(method, path, resp.StatusCode, rb)
		if apiErr.unauthorized() && !reauthed {
			c.ts.Invalidate(ctx, tok)
			continue
		}
		return apiErr
	}
}
