package shop

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Item is a line of a basket.
type Item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// BuyRequest is what a customer (the load generator) sends the storefront.
type BuyRequest struct {
	Items []Item `json:"items"`
}

// CheckoutRequest is what the storefront sends the checkout.
type CheckoutRequest struct {
	OrderID  string  `json:"order_id"`
	Items    []Item  `json:"items"`
	Total    float64 `json:"total"`
	Currency string  `json:"currency"`
}

// ReserveRequest is what the checkout sends the inventory.
type ReserveRequest struct {
	OrderID string `json:"order_id"`
	Items   []Item `json:"items"`
}

// ChargeRequest is what the checkout sends the payments service.
type ChargeRequest struct {
	OrderID  string  `json:"order_id"`
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
}

// Order is the answer to a purchase.
type Order struct {
	OrderID string  `json:"order_id"`
	Total   float64 `json:"total"`
	Status  string  `json:"status"`
}

// Catalog is what the shop sells, with prices in euros.
var Catalog = map[string]float64{
	"tea":     4.50,
	"coffee":  9.90,
	"filter":  3.20,
	"mug":     12.00,
	"teapot":  39.00,
	"grinder": 59.00,
}

// currency of every price and charge.
const currency = "EUR"

// Service times of the leaf services, uniform in [base, base+jitter): the
// work a real payment provider or stock database would take.
const (
	paymentsBase    = 6 * time.Millisecond
	paymentsJitter  = 6 * time.Millisecond
	inventoryBase   = 2 * time.Millisecond
	inventoryJitter = 3 * time.Millisecond
	// declineRate is the share of payments declined: cards do get
	// declined, so the success ratio is not flat at 1.
	declineRate = 0.01
)

var orderSeq atomic.Uint64

// storefront serves the catalog and takes purchases, which it prices and
// passes to the checkout.
func (s *service) storefront() error {
	skus := make([]string, 0, len(Catalog))
	for sku := range Catalog {
		skus = append(skus, sku)
	}
	sort.Strings(skus)
	s.handle("GET /{$}", "index", nil, func(w http.ResponseWriter, _ *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "Telltale demo shop (storefront %s)\n\n", s.cfg.Build)
		for _, sku := range skus {
			fmt.Fprintf(&b, "%-8s %6.2f %s\n", sku, Catalog[sku], currency)
		}
		b.WriteString("\nPOST /buy {\"items\":[{\"sku\":\"tea\",\"qty\":2}]}\n")
		_, _ = w.Write([]byte(b.String()))
	})
	s.handle("POST /buy", "buy", nil, func(w http.ResponseWriter, r *http.Request) {
		var req BuyRequest
		if !readJSON(w, r, &req) {
			return
		}
		if len(req.Items) == 0 {
			http.Error(w, "the basket is empty", http.StatusBadRequest)
			return
		}
		total := 0.0
		for _, it := range req.Items {
			price, ok := Catalog[it.SKU]
			if !ok || it.Qty < 1 || it.Qty > 100 {
				http.Error(w, fmt.Sprintf("item %q × %d: unknown product or quantity not 1 to 100", it.SKU, it.Qty), http.StatusBadRequest)
				return
			}
			total += price * float64(it.Qty)
		}
		co := CheckoutRequest{
			OrderID:  fmt.Sprintf("o-%d-%d", time.Now().Unix(), orderSeq.Add(1)),
			Items:    req.Items,
			Total:    math.Round(total*100) / 100,
			Currency: currency,
		}
		var order Order
		if err := s.call(r.Context(), Checkout, "/checkout", co, &order); err != nil {
			http.Error(w, err.Error(), errorCode(err))
			return
		}
		writeJSON(w, http.StatusOK, order)
	})
	return nil
}

// payments charges, taking a few milliseconds and a little CPU (a fraud
// check), and declines a few cards.
func (s *service) payments() {
	s.handle("POST /charge", "charge", nil, func(w http.ResponseWriter, r *http.Request) {
		var req ChargeRequest
		if !readJSON(w, r, &req) {
			return
		}
		if req.Amount <= 0 || req.Currency != currency {
			http.Error(w, fmt.Sprintf("cannot charge %v %s: want a positive amount in %s", req.Amount, req.Currency, currency), http.StatusBadRequest)
			return
		}
		fraudCheck(req.OrderID)
		if !sleep(r.Context(), paymentsBase+rand.N(paymentsJitter)) {
			return
		}
		if rand.Float64() < declineRate {
			http.Error(w, "card declined", http.StatusPaymentRequired)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"order_id": req.OrderID, "status": "charged"})
	})
}

// fraudCheck spends a little CPU per payment, so payments' CPU follows its
// traffic as a real service's would.
func fraudCheck(id string) {
	h := sha256.Sum256([]byte(id))
	for range 200 {
		h = sha256.Sum256(h[:])
	}
}

// inventory reserves stock; the shop restocks as it sells, so every known
// product is available.
func (s *service) inventory() {
	reserved := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shop_inventory_reserved_items_total", Help: "Items reserved for orders, by product.",
	}, []string{"sku"})
	s.reg.MustRegister(reserved)
	s.handle("POST /reserve", "reserve", nil, func(w http.ResponseWriter, r *http.Request) {
		var req ReserveRequest
		if !readJSON(w, r, &req) {
			return
		}
		for _, it := range req.Items {
			if _, ok := Catalog[it.SKU]; !ok || it.Qty < 1 {
				http.Error(w, fmt.Sprintf("cannot reserve %q × %d", it.SKU, it.Qty), http.StatusBadRequest)
				return
			}
		}
		if !sleep(r.Context(), inventoryBase+rand.N(inventoryJitter)) {
			return
		}
		for _, it := range req.Items {
			reserved.WithLabelValues(it.SKU).Add(float64(it.Qty))
		}
		writeJSON(w, http.StatusOK, map[string]string{"order_id": req.OrderID, "status": "reserved"})
	})
}
