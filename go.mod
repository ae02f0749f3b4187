module github.com/outpost-gw/outpost

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/coder/websocket v1.8.14
	github.com/eclipse/paho.golang v0.23.0
	go.uber.org/goleak v1.3.0
)
