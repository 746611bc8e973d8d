package mqttpub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/townlink/townlink/uplink/mqttpub/mosquittotest"
)

const (
	benchPayload  = 18 << 10 // ~100 readings per message
	benchReadings = 100
	benchWindow   = 8
)

// BenchmarkRawPahoQoS1 is "the limit": raw paho publishing 18 KB messages
// at QoS 1 to a local mosquitto with a sliding window of outstanding tokens
// (wait for the oldest only when the window is full). make bench prints it
// next to the gateway's end-to-end rate.
func BenchmarkRawPahoQoS1(b *testing.B) {
	br := mosquittotest.Start(b)
	o := mqtt.NewClientOptions().AddBroker(br.URL).SetClientID("bench-raw").SetCleanSession(true).
		SetAutoReconnect(false).SetOrderMatters(false).SetProtocolVersion(4).SetWriteTimeout(30 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(deadline) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	payload := make([]byte, benchPayload)
	window := make([]mqtt.Token, 0, benchWindow)
	wait := func(tok mqtt.Token) {
		if !tok.WaitTimeout(deadline) || tok.Error() != nil {
			b.Fatalf("publish: %v", tok.Error())
		}
	}
	b.SetBytes(benchPayload)
	start := time.Now()
	for b.Loop() {
		if len(window) == benchWindow {
			wait(window[0])
			window = window[1:]
		}
		window = append(window, c.Publish("bench/telemetry", 1, false, payload))
	}
	for _, tok := range window {
		wait(tok)
	}
	report(b, time.Since(start))
}

// BenchmarkClientPublish is the same through mqttpub.Client, with benchWindow
// goroutines each publishing and waiting (as the Forwarder does).
func BenchmarkClientPublish(b *testing.B) {
	br := mosquittotest.Start(b)
	o := testOptions(b, br.URL)
	o.Logger = nil
	c := start(b, o)
	waitConnected(b, c)
	payload := make([]byte, benchPayload)
	b.SetBytes(benchPayload)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan struct{})
	errs := make(chan error, benchWindow)
	for range benchWindow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := c.Publish(context.Background(), "bench/telemetry", payload); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	report(b, time.Since(start))
}

func report(b *testing.B, d time.Duration) {
	msgs := float64(b.N) / d.Seconds()
	b.ReportMetric(msgs, "msgs/s")
	b.ReportMetric(msgs*benchReadings, "readings/s")
}
