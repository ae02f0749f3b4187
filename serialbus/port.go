package serialbus

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// openSerial opens the port: the Device path, or the USB adapter that
// matches Options.USB, looked up anew each time.
func (l *Link) openSerial(context.Context) (port, string, error) {
	dev := l.opts.Device
	if dev == "" {
		ports, err := enumerator.GetDetailedPortsList()
		if err != nil {
			return nil, "", fmt.Errorf("serialbus: list USB serial ports: %w", err)
		}
		if dev, err = matchUSB(ports, l.opts.USB); err != nil {
			return nil, "", err
		}
	}
	p, err := serial.Open(dev, &serial.Mode{BaudRate: l.opts.Baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, dev, fmt.Errorf("serialbus: open %s: %w", dev, err)
	}
	return p, dev, nil
}

// matchUSB returns the name of the first port, in name order, that m
// matches. VID and PID compare without regard to case.
func matchUSB(ports []*enumerator.PortDetails, m USBMatch) (string, error) {
	var names []string
	for _, p := range ports {
		if p == nil || !p.IsUSB || !strings.EqualFold(p.VID, m.VID) {
			continue
		}
		if m.PID != "" && !strings.EqualFold(p.PID, m.PID) || m.Serial != "" && p.SerialNumber != m.Serial {
			continue
		}
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		return "", fmt.Errorf("serialbus: no USB serial port with VID %s, PID %q, serial %q", m.VID, m.PID, m.Serial)
	}
	slices.Sort(names)
	return names[0], nil
}
