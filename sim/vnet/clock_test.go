package vnet

import (
	"slices"
	"testing"
	"time"
)

func TestVirtualClockOrder(t *testing.T) {
	clk := NewVirtualClock(time.Time{})
	if !clk.Now().Equal(VirtualEpoch) {
		t.Fatalf("zero start: Now = %v, want %v", clk.Now(), VirtualEpoch)
	}
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, name+"@"+clk.Now().Sub(VirtualEpoch).String()) }
	}
	clk.AfterFunc(2*time.Second, at("b"))
	clk.AfterFunc(time.Second, at("a"))
	clk.AfterFunc(2*time.Second, at("c")) // same time as b, scheduled later
	clk.AfterFunc(time.Second, func() {
		at("d")()
		clk.AfterFunc(0, at("e")) // due at once: runs in the same Advance
	})
	stopped := clk.AfterFunc(1500*time.Millisecond, at("never"))
	if !stopped() {
		t.Fatal("stop of a pending function reported false")
	}
	if stopped() {
		t.Fatal("second stop reported true")
	}

	clk.Advance(time.Second)
	want := []string{"a@1s", "d@1s", "e@1s"}
	if !slices.Equal(got, want) {
		t.Fatalf("after 1s ran %v, want %v", got, want)
	}
	clk.Advance(1500 * time.Millisecond)
	want = append(want, "b@2s", "c@2s")
	if !slices.Equal(got, want) {
		t.Fatalf("after 2.5s ran %v, want %v", got, want)
	}
	if d := clk.Now().Sub(VirtualEpoch); d != 2500*time.Millisecond {
		t.Fatalf("Now after Advance = epoch+%v, want exactly 2.5s", d)
	}
}

func TestVirtualClockRunUntilIdle(t *testing.T) {
	clk := NewVirtualClock(time.Time{})
	ran := 0
	var tick func()
	tick = func() {
		ran++
		if ran < 3 {
			clk.AfterFunc(time.Minute, tick)
		}
	}
	clk.AfterFunc(time.Minute, tick)
	stop := clk.AfterFunc(time.Hour, func() { ran += 100 })
	clk.RunUntilIdle()
	if ran != 103 || clk.Pending() != 0 {
		t.Fatalf("ran %d (pending %d), want 103 (0)", ran, clk.Pending())
	}
	if stop() {
		t.Fatal("stop after the function ran reported true")
	}
	if d := clk.Now().Sub(VirtualEpoch); d != time.Hour {
		t.Fatalf("Now = epoch+%v, want the last event's time, 1h", d)
	}
}
