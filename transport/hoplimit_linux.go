package transport

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ttlControlMessage returns an IP_TTL control message, which Linux accepts on sendmsg
// to send one IPv4 datagram with that TTL (golang.org/x/net/ipv4 marshals TTL only on
// receive).
func ttlControlMessage(ttl int) ([]byte, error) {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.IPPROTO_IP
	h.Type = unix.IP_TTL
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(ttl))
	return b, nil
}
