package ws_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkNginxCPU is BenchmarkEdgeCPU's yardstick: the same clients and
// node, with nginx (one worker process, no master) proxying the WebSocket
// instead of the edge, and nginx's own CPU per message (from /proc; 10ms
// ticks, so use large -benchtime). nginx records nothing, so the edge's
// figure includes work nginx does not do (classifying, recording,
// producing to Kafka).
func BenchmarkNginxCPU(b *testing.B) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			b.Skip("nginx is not installed (apt-get install nginx-light): nothing to compare with")
		}
		bin = "/usr/sbin/nginx"
	}
	node := startUpstream(b)
	n := startNginx(b, bin, strings.TrimPrefix(node.url(), "ws://"))
	for _, shape := range []struct {
		name          string
		conns, window int
	}{{"closed-loop-50", 50, 1}, {"pipelined", 1, 128}} {
		b.Run(shape.name, func(b *testing.B) { benchProxyCPU(b, n.url, n.cpu, shape.conns, shape.window) })
	}
}

type nginxProc struct {
	url func(app string) string
	cpu func() int64 // user + system CPU, ns
}

func startNginx(b *testing.B, bin, upstream string) nginxProc {
	dir := b.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf(`daemon off; master_process off; worker_processes 1; error_log stderr warn; pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / {
      proxy_pass http://%[3]s;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h; proxy_send_timeout 1h;
      proxy_buffering off;
    }
  }
}`, dir, addr, upstream)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("nginx did not start listening")
		}
	}
	pid := cmd.Process.Pid
	return nginxProc{
		url: func(app string) string { return "ws://" + addr + "/" + app },
		cpu: func() int64 { return procCPU(b, pid) },
	}
}

// procCPU is a process's user + system CPU from /proc/PID/stat.
func procCPU(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return (utime + stime) * int64(10*time.Millisecond) // USER_HZ is 100 on Linux
}
