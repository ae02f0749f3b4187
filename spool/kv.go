package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	badger "github.com/dgraph-io/badger/v4"
)

// KV is a durable key-value namespace, for the broker's retained messages
// and persistent sessions. Set and Delete go through the group-commit writer
// and follow the sync policy like Append.
type KV struct {
	s      *Store
	prefix []byte
}

// KV returns the namespace called namespace. Names may not contain '/'. It
// may be called at any time; the calls of the KV work once Ready is closed.
func (s *Store) KV(namespace string) (*KV, error) {
	if err := checkName("KV namespace", namespace); err != nil {
		return nil, err
	}
	return &KV{s: s, prefix: kvPrefix(namespace)}, nil
}

func (kv *KV) key(key string) ([]byte, error) {
	if len(kv.prefix)+len(key) > maxKeyBytes {
		return nil, fmt.Errorf("%w: key of %d bytes", ErrTooLarge, len(key))
	}
	return append(bytes.Clone(kv.prefix), key...), nil
}

// Set stores val under key, replacing what was there. It returns once the
// write is durable as the sync policy says. val is copied.
func (kv *KV) Set(ctx context.Context, key string, val []byte) error {
	k, err := kv.key(key)
	if err != nil {
		return err
	}
	if int64(len(val)) >= kv.s.opts.ValueLogFileBytes {
		return fmt.Errorf("%w: value of %d bytes (ValueLogFileBytes is %d)", ErrTooLarge, len(val), kv.s.opts.ValueLogFileBytes)
	}
	return kv.s.do(ctx, &request{op: opSet, key: k, val: bytes.Clone(val)})
}

// SetMany stores vals[i] under keys[i], all in one commit (all or none),
// synced like Set. The values are copied. Unlike Set it is not refused
// below Options.MinFreeBytes: it is meant for small bookkeeping records
// (the uplink's QoS 2 flights) that let a drain, which frees space, go on.
func (kv *KV) SetMany(ctx context.Context, keys []string, vals [][]byte) error {
	if len(keys) != len(vals) {
		return fmt.Errorf("spool: SetMany with %d keys and %d values", len(keys), len(vals))
	}
	if len(keys) == 0 {
		return nil
	}
	r := &request{op: opSetMany, keys: make([][]byte, len(keys)), vals: make([][]byte, len(vals))}
	for i, key := range keys {
		k, err := kv.key(key)
		if err != nil {
			return err
		}
		if int64(len(vals[i])) >= kv.s.opts.ValueLogFileBytes {
			return fmt.Errorf("%w: value of %d bytes (ValueLogFileBytes is %d)", ErrTooLarge, len(vals[i]), kv.s.opts.ValueLogFileBytes)
		}
		r.keys[i], r.vals[i] = k, bytes.Clone(vals[i])
	}
	return kv.s.do(ctx, r)
}

// Delete removes key; deleting a missing key is no error.
func (kv *KV) Delete(ctx context.Context, key string) error {
	k, err := kv.key(key)
	if err != nil {
		return err
	}
	return kv.s.do(ctx, &request{op: opDelete, key: k})
}

// Forget removes keys like Delete, without waiting for a sync under any
// sync policy (see Queue.Ack): for records whose loss on a power cut only
// means that something is done again.
func (kv *KV) Forget(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		k, err := kv.key(key)
		if err != nil {
			return err
		}
		if err := kv.s.do(ctx, &request{op: opForget, key: k}); err != nil {
			return err
		}
	}
	return nil
}

// Get returns a copy of the value stored under key, and whether there is
// one.
func (kv *KV) Get(key string) (val []byte, ok bool, err error) {
	k, err := kv.key(key)
	if err != nil {
		return nil, false, err
	}
	err = kv.s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		val, err = item.ValueCopy(nil)
		ok = err == nil
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("spool: get: %w", err)
	}
	if ok && val == nil {
		val = []byte{}
	}
	return val, ok, nil
}

// Scan calls fn for every key that starts with prefix, in key order, with a
// copy of its value, until fn returns an error, which Scan returns. fn sees
// the namespace as it was when Scan began, and may call Set and Delete.
func (kv *KV) Scan(prefix string, fn func(key string, val []byte) error) error {
	p, err := kv.key(prefix)
	if err != nil {
		return err
	}
	var fnErr error
	err = kv.s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 32, Prefix: p})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			val, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if val == nil {
				val = []byte{}
			}
			if fnErr = fn(string(item.Key()[len(kv.prefix):]), val); fnErr != nil {
				return fnErr
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("spool: scan: %w", err)
	}
	return nil
}
