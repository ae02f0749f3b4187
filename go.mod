module github.com/outpost-gw/outpost

go 1.26
