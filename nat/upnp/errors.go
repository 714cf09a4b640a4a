package upnp

import (
	"errors"
	"fmt"

	"github.com/huin/goupnp/soap"
)

// ErrNoGateway is returned by [Discover] when no usable UPnP internet gateway
// answered: none on the LAN, UPnP disabled on the router, or a device that is not an
// IGD. Enable UPnP on the router, or set [Config.RootURL] to its description URL.
var ErrNoGateway = errors.New("upnp: no UPnP internet gateway found (is UPnP enabled on the router?)")

// ErrNoExternalAddress is returned when the gateway reports no usable external IPv4
// address (an empty answer or 0.0.0.0): its WAN link is usually down.
var ErrNoExternalAddress = errors.New("upnp: the gateway has no external IPv4 address (is its WAN link up?)")

// ErrConflict matches an [ActionError] with UPnP error 718 ConflictInMappingEntry:
// the external port is already mapped to another internal client.
var ErrConflict = errors.New("upnp: external port is already mapped to another client")

// ErrOnlyPermanentLeases matches an [ActionError] with UPnP error 725
// OnlyPermanentLeasesSupported: the gateway accepts only lease duration 0.
var ErrOnlyPermanentLeases = errors.New("upnp: the gateway supports only permanent leases")

// ErrClosed is returned by [Mapper.Run] after [Mapper.Close].
var ErrClosed = errors.New("upnp: mapper closed")

// UPnP error codes of the WANIPConnection and WANPPPConnection services that this
// package acts on.
const (
	codeNoSuchEntry         = 714 // NoSuchEntryInArray
	codeConflict            = 718 // ConflictInMappingEntry
	codeSamePortRequired    = 724 // SamePortValuesRequired
	codeOnlyPermanentLeases = 725 // OnlyPermanentLeasesSupported
)

// ActionError is a SOAP fault the gateway answered an action with. errors.Is matches
// it against [ErrConflict] and [ErrOnlyPermanentLeases] by code.
type ActionError struct {
	// Action is the SOAP action that failed, e.g. "AddPortMapping".
	Action string
	// Code is the UPnP error code (errorCode), 0 if the fault carried none.
	Code int
	// Description is the gateway's errorDescription, or the faultstring.
	Description string
	// Err is the fault as goupnp decoded it.
	Err error
}

func (e *ActionError) Error() string {
	return fmt.Sprintf("upnp: gateway refused %s: UPnP error %d %s", e.Action, e.Code, e.Description)
}

// Unwrap returns the underlying SOAP fault.
func (e *ActionError) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel for this error's code.
func (e *ActionError) Is(target error) bool {
	switch target {
	case ErrConflict:
		return e.Code == codeConflict
	case ErrOnlyPermanentLeases:
		return e.Code == codeOnlyPermanentLeases
	}
	return false
}

// actionError turns a SOAP fault from goupnp into an *ActionError; it returns nil
// for any other error.
func actionError(action string, err error) *ActionError {
	var fault *soap.SOAPFaultError
	if !errors.As(err, &fault) {
		return nil
	}
	desc := fault.Detail.UPnPError.ErrorDescription
	if desc == "" {
		desc = fault.FaultString
	}
	return &ActionError{Action: action, Code: fault.Detail.UPnPError.Errorcode, Description: desc, Err: err}
}
