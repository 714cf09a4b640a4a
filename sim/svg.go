package sim

import (
	"fmt"
	"html"
	"strings"
)

// SVG draws the matrix as a heatmap, one grid per protocol set: green where A
// connected to B (darker for a direct connection, to a listen port or a UPnP-mapped
// one, lighter for a punched one), grey where theory says no direct connection
// exists and none was made, red where the outcome differs from theory. Each cell is
// labelled with the ladder step.
func (r Result) SVG() []byte {
	const (
		cell   = 92
		height = 34
		left   = 120
		top    = 70
		gap    = 40
	)
	n := len(r.Kinds)
	gridW := left + n*cell
	width := len(r.Protocols)*(gridW+gap) + gap
	total := top + n*height + 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, total)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, total)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">crust NAT matrix: A (row) connects to B (column)</text>`+"\n", gap)
	for g, ps := range r.Protocols {
		x0 := gap + g*(gridW+gap)
		fmt.Fprintf(&b, `<text x="%d" y="42" font-size="13" font-weight="bold">%s</text>`+"\n", x0+left, html.EscapeString(ps))
		for j, k := range r.Kinds {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+left+j*cell+cell/2, top-8, html.EscapeString(k))
		}
		for i, a := range r.Kinds {
			y := top + i*height
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0+left-6, y+height/2+4, html.EscapeString(a))
			for j, k := range r.Kinds {
				c, _ := r.cell(a, k, ps)
				x := x0 + left + j*cell
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="white"/>`+"\n", x, y, cell, height, c.color())
				fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+cell/2, y+height/2+4, html.EscapeString(c.label()))
			}
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">dark green: direct (UPnP included); light green: punched; grey: impossible, as theory says; red: differs from theory</text>`+"\n", gap, total-14)
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// color is the cell's fill.
func (c Cell) color() string {
	switch {
	case c.Unexpected() || c.Err != nil:
		return "#e05050"
	case !c.OK():
		return "#cccccc"
	case strings.HasSuffix(c.Kind, "-direct"), c.Kind == "tcp-upnp":
		return "#2e8b57"
	}
	return "#90d890"
}
