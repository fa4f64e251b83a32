package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/relaymeter/relaymeter/identity"
)

func init() {
	register(command{name: "apps", summary: "create, list, disable or enable applications (who pays)", run: runApps})
	register(command{name: "suppliers", summary: "create or list suppliers (who is paid)", run: runSuppliers})
	register(command{name: "keys", summary: "create, list or revoke API keys", run: runKeys})
}

// identityCommand parses the flags of an identity subcommand (its own
// flags added by define) and opens the registry. It returns the
// positional arguments: the verb first.
func identityCommand(ctx context.Context, name, usage string, args []string, sio stdio, define func(*flag.FlagSet)) (*identity.Registry, []string, func(), error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(sio.err)
	dbURL := fs.String("database-url", "", "Postgres URL (required)")
	fs.String("config", "", "YAML configuration file")
	if define != nil {
		define(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(sio.err, "usage: relaymeter %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	fc, err := parseConfig(fs, args)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(fc.args) == 0 {
		fs.Usage()
		return nil, nil, nil, errUsage
	}
	store, err := openStore(ctx, *dbURL, false, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	return identity.NewRegistry(store.Pool()), fc.args, store.Pool().Close, nil
}

// wantArgs checks that args (after the verb) number n.
func wantArgs(args []string, n int, usage string) error {
	if len(args)-1 != n {
		return fmt.Errorf("%w: %s", errArgs, usage)
	}
	return nil
}

var errArgs = errors.New("wrong arguments")

func runApps(ctx context.Context, args []string, sio stdio) error {
	const usage = "create NAME | list | disable ID | enable ID"
	reg, args, done, err := identityCommand(ctx, "apps", usage, args, sio, nil)
	if err != nil {
		return err
	}
	defer done()
	switch args[0] {
	case "create":
		if err := wantArgs(args, 1, "apps create NAME"); err != nil {
			return err
		}
		a, err := reg.CreateApplication(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintln(sio.out, a.ID)
		return nil
	case "disable", "enable":
		if err := wantArgs(args, 1, "apps "+args[0]+" ID"); err != nil {
			return err
		}
		a, err := reg.SetApplicationDisabled(ctx, args[1], args[0] == "disable")
		if err != nil {
			return err
		}
		fmt.Fprintf(sio.err, "application %s (%s): disabled %v\n", a.ID, a.Name, a.Disabled)
		return nil
	case "list":
		apps, err := reg.Applications(ctx)
		if err != nil {
			return err
		}
		return table(sio.out, []string{"ID", "NAME", "DISABLED", "CREATED"}, len(apps), func(i int) []any {
			a := apps[i]
			return []any{a.ID, a.Name, a.Disabled, stamp(a.CreatedAt)}
		})
	}
	return fmt.Errorf("%w: apps %s", errArgs, usage)
}

func runSuppliers(ctx context.Context, args []string, sio stdio) error {
	const usage = "create NAME | list"
	reg, args, done, err := identityCommand(ctx, "suppliers", usage, args, sio, nil)
	if err != nil {
		return err
	}
	defer done()
	switch args[0] {
	case "create":
		if err := wantArgs(args, 1, "suppliers create NAME"); err != nil {
			return err
		}
		s, err := reg.CreateSupplier(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintln(sio.out, s.ID)
		return nil
	case "list":
		sups, err := reg.Suppliers(ctx)
		if err != nil {
			return err
		}
		return table(sio.out, []string{"ID", "NAME", "CREATED"}, len(sups), func(i int) []any {
			return []any{sups[i].ID, sups[i].Name, stamp(sups[i].CreatedAt)}
		})
	}
	return fmt.Errorf("%w: suppliers %s", errArgs, usage)
}

func runKeys(ctx context.Context, args []string, sio stdio) error {
	const usage = "create --app ID|--supplier ID|--admin [--name N] [--expires 720h] | list | revoke ID"
	var app, sup, name string
	var admin bool
	var expires time.Duration
	reg, args, done, err := identityCommand(ctx, "keys", usage, args, sio, func(fs *flag.FlagSet) {
		fs.StringVar(&app, "app", "", "create: a key of this application (its id)")
		fs.StringVar(&sup, "supplier", "", "create: a key of this supplier (its id)")
		fs.BoolVar(&admin, "admin", false, "create: an admin key (sees and may do everything)")
		fs.StringVar(&name, "name", "", "create: the key's name, to tell keys apart")
		fs.DurationVar(&expires, "expires", 0, "create: the key stops working this long after creation (0: never)")
	})
	if err != nil {
		return err
	}
	defer done()
	switch args[0] {
	case "create":
		if err := wantArgs(args, 0, "keys create takes flags only"); err != nil {
			return err
		}
		spec, err := keySpec(app, sup, admin, name, expires)
		if err != nil {
			return err
		}
		secret, k, err := reg.CreateKey(ctx, spec)
		if err != nil {
			return err
		}
		// The secret alone on stdout, for scripts; the rest for people.
		fmt.Fprintln(sio.out, secret)
		fmt.Fprintf(sio.err, "created key %s (%s%s); its secret is shown only now\n", k.ID, k.Role, owner(k))
		return nil
	case "revoke":
		if err := wantArgs(args, 1, "keys revoke ID"); err != nil {
			return err
		}
		k, err := reg.RevokeKey(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(sio.err, "key %s revoked at %s; edges and the API refuse it within their cache's TTL\n", k.ID, stamp(k.RevokedAt))
		return nil
	case "list":
		keys, err := reg.Keys(ctx)
		if err != nil {
			return err
		}
		return table(sio.out, []string{"ID", "ROLE", "OWNER", "NAME", "CREATED", "LAST USED", "EXPIRES", "REVOKED"}, len(keys), func(i int) []any {
			k := keys[i]
			return []any{k.ID, k.Role, k.Application + k.Supplier, k.Name, stamp(k.CreatedAt), stamp(k.LastUsedAt), stamp(k.ExpiresAt), stamp(k.RevokedAt)}
		})
	}
	return fmt.Errorf("%w: keys %s", errArgs, usage)
}

// keySpec is the key the create flags ask for: exactly one of an
// application, a supplier, or admin.
func keySpec(app, sup string, admin bool, name string, expires time.Duration) (identity.NewKey, error) {
	spec := identity.NewKey{Application: app, Supplier: sup, Name: name}
	n := 0
	for _, set := range []bool{app != "", sup != "", admin} {
		if set {
			n++
		}
	}
	if n != 1 {
		return spec, fmt.Errorf("%w: keys create needs exactly one of --app ID, --supplier ID, --admin", errArgs)
	}
	switch {
	case app != "":
		spec.Role = identity.RoleApplication
	case sup != "":
		spec.Role = identity.RoleSupplier
	default:
		spec.Role = identity.RoleAdmin
	}
	if expires < 0 {
		return spec, fmt.Errorf("%w: --expires must not be negative", errArgs)
	}
	if expires > 0 {
		spec.ExpiresAt = time.Now().Add(expires)
	}
	return spec, nil
}

func owner(k identity.Key) string {
	if o := k.Application + k.Supplier; o != "" {
		return " of " + o
	}
	return ""
}

// stamp is t for a table: RFC 3339 in UTC, "-" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// table writes a header and n rows, tab-aligned.
func table(w io.Writer, header []string, n int, row func(int) []any) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, h := range header {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, h)
	}
	fmt.Fprintln(tw)
	for i := range n {
		for j, v := range row(i) {
			if j > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
