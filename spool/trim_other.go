//go:build !linux

package spool

import "errors"

func trimMapped(string) (int64, error) { return 0, errors.ErrUnsupported }
