package graphql

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// chromium returns the path of the Chromium binary, failing the test where
// there is none: the browser tests are part of the suite, not optional.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("no Chromium to run the browser tests: install Chromium: apt-get install chromium")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab's context; what the page logs and throws is gathered in the
// returned console.
func browser(t *testing.T) (context.Context, *console) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	c := &console{}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			c.add(m)
		}
	}()
	t.Cleanup(func() { cancelTab(); <-done })
	return ctx, c
}

// console is what a page logged.
type console struct {
	mu    sync.Mutex
	lines []string
	bad   []string // exceptions and refusals of the CSP
}

func (c *console) add(m chromedp.ConsoleMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := fmt.Sprintf("%s: %s", m.Type, m.Text)
	c.lines = append(c.lines, line)
	if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
		c.bad = append(c.bad, line)
	}
}

func (c *console) broken() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}

func (c *console) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// artifacts is where the browser tests leave their screenshots.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RELAYMETER_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// waitText waits until the element sel's text is want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(function () { var e = document.querySelector(%q); return !!e && e.textContent === %q; })()`, sel, want),
		chromedp.WithPollingTimeout(15*time.Second))
}

// text returns the text of the element with the id.
func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return v
}

func eval(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func TestBrowserUsagePage(t *testing.T) {
	srv, pool := liveServer(t, Config{})
	ctx, cons := browser(t)
	defer func() {
		if t.Failed() {
			t.Logf("browser console:\n%s", strings.Join(cons.all(), "\n"))
		}
	}()

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/usage"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), adminKey),
		chromedp.Click(chromedp.ID("signin-button")),
		waitText("#total-messages", "111"),
		chromedp.Poll[chromedp.Void](`document.body.hasAttribute("data-loaded")`, chromedp.WithPollingTimeout(15*time.Second)),
	)
	if err != nil {
		t.Fatalf("sign in and see the totals: %v", err)
	}
	messages, relays, units, bytes := text(t, ctx, "total-messages"), text(t, ctx, "total-relays"), text(t, ctx, "total-units"), text(t, ctx, "total-bytes")
	if messages != "111" || relays != "222" || units != "333" || bytes != "444" {
		t.Errorf("totals on the page: %s messages, %s relays, %s units, %s bytes; want 111, 222, 333, 444", messages, relays, units, bytes)
	}
	if signedIn := eval(t, ctx, `document.getElementById("signin").hidden ? "yes" : "no"`); signedIn != "yes" {
		t.Errorf("signed in, the sign-in form is still shown")
	}
	// Without usageSeries (this branch alone) the table is the totals; with
	// it, a row per day and service: eth 1+100, pool 10 on 2026-01-02.
	table := text(t, ctx, "table")
	want := []string{"window", "service", "messages", "units", "111", "333"}
	if shown := eval(t, ctx, `document.getElementById("error").textContent`); !strings.Contains(shown, "usageSeries") {
		want = []string{"window", "service", "messages", "units", "eth", "101", "pool", "10"}
	}
	for _, w := range want {
		if !strings.Contains(table, w) {
			t.Errorf("table %q lacks %q", table, w)
		}
	}
	if stored, href := eval(t, ctx, `sessionStorage.getItem("relaymeter.usageKey")`), eval(t, ctx, `location.href`); stored != adminKey || strings.Contains(href, adminKey) {
		t.Errorf("key in sessionStorage %q, address %q", stored, href)
	}
	t.Logf("the page's error line (usageSeries may be absent on this branch): %q", eval(t, ctx, `document.getElementById("error").textContent`))

	// A batch commits: the page shows it without a reload.
	addUsage(t, pool, t0.Add(2*time.Hour), "eth", "app1", 1000, 2000, 3000, 4000)
	if err := chromedp.Do(ctx, waitText("#total-messages", "1,111"), waitText("#total-units", "3,333")); err != nil {
		t.Fatalf("live update: %v", err)
	}
	if live := text(t, ctx, "live"); !strings.HasPrefix(live, "live") {
		t.Errorf("live status %q", live)
	}
	screenshot(t, ctx, "usage-page.png")
	for _, line := range cons.broken() {
		t.Errorf("the page broke: %s", line)
	}

	// Signing out forgets the key.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("key"))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if stored := eval(t, ctx, `sessionStorage.getItem("relaymeter.usageKey") || ""`); stored != "" {
		t.Errorf("signed out, the key is left in sessionStorage: %q", stored)
	}
}

func TestBrowserGraphiQL(t *testing.T) {
	srv, _ := liveServer(t, Config{})
	ctx, cons := browser(t)
	defer func() {
		if t.Failed() {
			t.Logf("browser console:\n%s", strings.Join(cons.all(), "\n"))
		}
	}()
	const headers = `{"Authorization": "Bearer ` + adminKey + `"}`
	const headersEditor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(".graphiql-query-editor .CodeMirror")),
		chromedp.Poll[chromedp.Void](`(document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue("{ usage { messages } }"), true)`),
		chromedp.Click(`//button[normalize-space(.)="Headers"]`),
		chromedp.WaitVisible(chromedp.CSS(headersEditor)),
		chromedp.Click(chromedp.CSS(headersEditor)),
		// As a paste: the text arrives at once, not key by key.
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: headers})
			return err
		}),
	)
	if err != nil {
		t.Fatalf("paste the key into the headers editor: %v", err)
	}
	if pasted := eval(t, ctx, `document.querySelector(`+fmt.Sprintf("%q", headersEditor)+`).CodeMirror.getValue()`); pasted != headers {
		t.Fatalf("headers editor holds %q, want %q", pasted, headers)
	}
	const response = `document.querySelector(".graphiql-response .CodeMirror")`
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(".graphiql-execute-button")),
		chromedp.Poll[chromedp.Void](`!!`+response+` && `+response+`.CodeMirror.getValue().indexOf("messages") >= 0`,
			chromedp.WithPollingTimeout(15*time.Second)),
	)
	if err != nil {
		t.Fatalf("run the query: %v", err)
	}
	if result := eval(t, ctx, response+`.CodeMirror.getValue()`); !strings.Contains(result, `"messages": 111`) {
		t.Errorf("GraphiQL shows %s, want messages 111", result)
	}
	screenshot(t, ctx, "graphiql.png")
}

// fakeSeries makes the page's fetch answer viewer and usageSeries (which
// the API of this branch lacks) with fixed data, and keeps the CSV the page
// downloads in window.__csv.
const fakeSeries = `(function () {
  var real = window.fetch;
  window.fetch = function (url, init) {
    var q = JSON.parse(init.body).query;
    var reply = function (data) {
      return Promise.resolve(new Response(JSON.stringify({ data: data }), { headers: { "Content-Type": "application/json" } }));
    };
    if (q.indexOf("usageSeries") >= 0) {
      return reply({ usageSeries: { rows: [
        { window: "2026-01-02T00:00:00Z", service: "eth", application: "app1", supplier: "s", protocol: "P", method: "m", messages: 7, relays: 7, units: 70, bytes: 700 },
        { window: "2026-01-02T00:00:00Z", service: "=pool", application: "app2", supplier: "s", protocol: "P", method: "m", messages: 3, relays: 3, units: 30, bytes: 300 },
        { window: "2026-01-03T00:00:00Z", service: "eth", application: "app1", supplier: "s", protocol: "P", method: "m", messages: 5, relays: 5, units: 50, bytes: 500 }
      ] } });
    }
    if (q.indexOf("viewer") >= 0) {
      return reply({ viewer: { role: "APPLICATION", application: { id: "app1", name: "App One" }, supplier: null } });
    }
    return real.apply(this, arguments);
  };
  var realURL = URL.createObjectURL;
  URL.createObjectURL = function (blob) { blob.text().then(function (t) { window.__csv = t; }); return realURL.call(URL, blob); };
  // Keep the file, not the browser's download of it.
  var realClick = HTMLAnchorElement.prototype.click;
  HTMLAnchorElement.prototype.click = function () { if (!this.download) { realClick.call(this); } };
  return true;
})()`

func TestBrowserUsageCharts(t *testing.T) {
	srv, _ := liveServer(t, Config{})
	ctx, cons := browser(t)
	defer func() {
		if t.Failed() {
			t.Logf("browser console:\n%s", strings.Join(cons.all(), "\n"))
		}
	}()
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/usage"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.Poll[chromedp.Void](fakeSeries),
		chromedp.SendKeys(chromedp.ID("key"), adminKey),
		chromedp.Click(chromedp.ID("signin-button")),
		waitText("#total-messages", "111"),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#chart-messages svg rect").length === 3`,
			chromedp.WithPollingTimeout(15*time.Second)),
	)
	if err != nil {
		t.Fatalf("charts: %v", err)
	}
	if who := text(t, ctx, "who"); !strings.Contains(who, "App One") {
		t.Errorf("viewer shown as %q", who)
	}
	// An application key is not offered a grouping by application.
	if groups := eval(t, ctx, `Array.from(document.getElementById("group").options).map(function (o) { return o.value; }).join(",")`); groups != "SERVICE,PROTOCOL" {
		t.Errorf("groupings offered to an application key: %s", groups)
	}
	if legend := eval(t, ctx, `document.querySelector("#chart-units .legend").textContent`); !strings.Contains(legend, "eth") || !strings.Contains(legend, "=pool") {
		t.Errorf("legend %q", legend)
	}
	if rows := eval(t, ctx, `String(document.querySelectorAll("#table tbody tr").length)`); rows != "3" {
		t.Errorf("%s table rows, want 3", rows)
	}
	screenshot(t, ctx, "usage-charts.png")
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("csv")),
		chromedp.Poll[chromedp.Void](`typeof window.__csv === "string"`, chromedp.WithPollingTimeout(5*time.Second)),
	)
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	want := "window,service,messages,relays,units,bytes\r\n" +
		"2026-01-02T00:00:00Z,eth,7,7,70,700\r\n" +
		"2026-01-02T00:00:00Z,'=pool,3,3,30,300\r\n" +
		"2026-01-03T00:00:00Z,eth,5,5,50,500\r\n"
	if got := eval(t, ctx, `window.__csv`); got != want {
		t.Errorf("CSV:\n%q\nwant\n%q", got, want)
	}
	for _, line := range cons.broken() {
		t.Errorf("the page broke: %s", line)
	}
}
