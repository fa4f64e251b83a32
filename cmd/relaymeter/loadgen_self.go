package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/relaymeter/relaymeter/internal/ethsim"
)

// selfLoad is the environment `loadgen ws --self` starts: a simulated node
// and an embedded Kafka in this process, and the edge in a child process
// so that its CPU can be told apart from the load generator's.
type selfLoad struct {
	edgeURL, upstreamURL string
	edgePID              int
	stop                 func()
}

func startSelfLoad(ctx context.Context, logw io.Writer, forwarding string) (*selfLoad, error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	node := ethsim.New(ethsim.Config{HeadInterval: -1})
	nodeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	nodeSrv := &http.Server{Handler: node}
	go nodeSrv.Serve(nodeLn)
	stops = append(stops, func() { nodeSrv.Close() })

	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topicMessages), kfake.DefaultNumPartitions(4))
	if err != nil {
		stop()
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	stops = append(stops, kc.Close)

	edgeAddr, err := freePort()
	if err != nil {
		stop()
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		stop()
		return nil, err
	}
	upstream := "ws://" + nodeLn.Addr().String() + "/"
	cmd := exec.CommandContext(ctx, exe, "edge", "ws", "--listen", edgeAddr, "--upstream", upstream,
		"--kafka", strings.Join(kc.ListenAddrs(), ","), "--service", "eth", "--supplier", "loadgen",
		"--edge-id", "loadgen", "--log-level", "warn", "--forwarding", forwarding)
	if prof := os.Getenv("RELAYMETER_EDGE_CPUPROFILE"); prof != "" {
		cmd.Args = append(cmd.Args, "--cpuprofile", prof)
	}
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		stop()
		return nil, fmt.Errorf("start edge: %w", err)
	}
	stops = append(stops, func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", edgeAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("edge did not listen on %s: %w", edgeAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &selfLoad{edgeURL: "ws://" + edgeAddr + "/loadgen", upstreamURL: upstream, edgePID: cmd.Process.Pid, stop: stop}, nil
}

// freePort returns a loopback address with a port free at the time of the call.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
