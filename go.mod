module github.com/outpost-gw/outpost

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/coder/websocket v1.8.14 // indirect
	go.uber.org/goleak v1.3.0
)
