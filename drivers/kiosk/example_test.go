package kiosk_test

import (
	"fmt"
	"time"

	"github.com/townlink/townlink/drivers/kiosk"
)

func Example() {
	now := time.Date(2024, 11, 30, 9, 0, 0, 0, time.UTC)
	k, err := kiosk.New(kiosk.Config{Device: "hall-kiosk-1", Window: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	// The gateway calls Decode with the topic's last level.
	k.Decode("ticket.issued", []byte(`{"ticket_no":"A023","business_type":"social-security","issued_at":1732957200000}`))
	rds, _ := k.Decode("ticket.called", []byte(`{"ticket_no":"A023","window_no":3,"called_at":1732957512345}`))
	fmt.Println(rds[0].Values["event"], rds[0].Values["ticket"], rds[0].Values["service"], rds[0].Values["wait_s"])
	_, err = k.Decode("service.rated", []byte(`{"ticket_no":"A023","rating":2}`))
	fmt.Println(err)
	_, err = k.Decode("ticket.issued", []byte(`{"ticket_no":"A024","business_type":"tax","note":"11010519491231002X"}`))
	fmt.Println(err)
	m := k.Metrics(now.Add(30 * time.Second))
	fmt.Println(m[0].Values["service"], "p50", m[0].Values["wait_p50_s"], "waiting", m[0].Values["waiting"])
	// Output:
	// ticket_called A023 social-security 312.345
	// kiosk: hall-kiosk-1 service.rated: reasons: missing (required)
	// kiosk: hall-kiosk-1 ticket.issued: note = <redacted>: holds a PRC resident ID number
	// social-security p50 312.345 waiting 0
}
