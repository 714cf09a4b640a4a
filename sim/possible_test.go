package sim

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// Possible's theory, cell by cell for the pairs that decide it.
func TestPossible(t *testing.T) {
	k := func(name string) Kind {
		kind, ok := KindByName(name)
		if !ok {
			t.Fatalf("no kind %q", name)
		}
		return kind
	}
	tcp, quic := []string{"tcp"}, []string{"quic"}
	for _, tc := range []struct {
		a, b      string
		protocols []string
		want      bool
	}{
		{"public", "symmetric", tcp, true},
		{"port-restricted", "port-restricted", tcp, true},
		{"firewall", "port-restricted", tcp, true},
		{"symmetric", "full-cone", tcp, true},
		{"restricted", "symmetric", tcp, true},
		{"symmetric", "port-restricted", tcp, false},
		{"firewall", "symmetric", tcp, false},
		{"symmetric", "port-restricted", quic, true},
		{"symmetric", "symmetric", quic, false},
		{"symmetric", "symmetric", []string{"tcp", "quic"}, false},
		// A UPnP site's mapped ports let anyone in: it is reached like a public host,
		// and punches like a full cone (the peer's packets come in on them).
		{"symmetric", "upnp", tcp, true},
		{"upnp", "symmetric", tcp, true},
		{"port-restricted", "symmetric", tcp, false},
		// Port-restricted behind port-restricted is port-restricted.
		{"cgnat", "cgnat", tcp, true},
		{"cgnat", "symmetric", tcp, false},
		{"symmetric", "cgnat", quic, true},
		{"cgnat", "full-cone", tcp, true},
	} {
		if got := Possible(k(tc.a), k(tc.b), tc.protocols); got != tc.want {
			t.Errorf("Possible(%s, %s, %v) = %v, want %v", tc.a, tc.b, tc.protocols, got, tc.want)
		}
	}
}

// The heatmap is well-formed SVG with a cell per pair, and a cell that differs from
// theory is red.
func TestMatrixSVG(t *testing.T) {
	res := Result{
		Kinds:     []string{"public", "symmetric"},
		Protocols: []string{"tcp"},
		Cells: []Cell{
			{A: "public", B: "public", Protocols: "tcp", Outcome: Outcome{Kind: "tcp-direct"}, Possible: true},
			{A: "public", B: "symmetric", Protocols: "tcp", Outcome: Outcome{Kind: "tcp-punch"}, Possible: true},
			{A: "symmetric", B: "public", Protocols: "tcp", Outcome: Outcome{Kind: "tcp-direct"}, Possible: true},
			{A: "symmetric", B: "symmetric", Protocols: "tcp", Outcome: Outcome{Kind: "tcp-punch"}, Possible: false},
		},
	}
	svg := res.SVG()
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	rects := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("not well-formed: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if rects != 1+4 { // the background and one per cell
		t.Fatalf("%d rects, want 5", rects)
	}
	if !strings.Contains(string(svg), "#e05050") || !strings.Contains(res.Table(), "tcp-punch!") {
		t.Fatal("the cell that differs from theory is not marked")
	}
	direct := Cell{Outcome: Outcome{Kind: "tcp-direct"}, Possible: true}.color()
	if upnp := (Cell{Outcome: Outcome{Kind: "tcp-upnp"}, Possible: true}).color(); upnp != direct {
		t.Fatalf("a tcp-upnp cell is %s, a direct one %s: a UPnP mapping is a direct connection", upnp, direct)
	}
}
