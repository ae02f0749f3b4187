//go:build linux

package serialbus

import (
	"os"
	"testing"

	"github.com/outpost-gw/outpost/internal/ptytest"
)

// openPty opens a real pseudo-terminal pair: the master is the radio's
// side, played by the test; the returned path is the serial port.
func openPty(t *testing.T) (*os.File, string) { return ptytest.Open(t) }
