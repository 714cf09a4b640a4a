package wire

import "errors"

// ErrFrameTooLarge is returned for a frame longer than the configured maximum.
var ErrFrameTooLarge = errors.New("frame larger than the maximum frame size")

// ErrMalformed is returned for a frame that is not a well-formed envelope.
var ErrMalformed = errors.New("malformed frame")
