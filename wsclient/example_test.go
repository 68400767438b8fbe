package wsclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/wsclient"
)

// exampleServer starts a real filehub session server on a temp directory.
func exampleServer() (*realServer, func()) {
	dir, err := os.MkdirTemp("", "wsclient-example")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := startRealServer(dir, "127.0.0.1:0", "")
	if err != nil {
		log.Fatal(err)
	}
	return srv, func() {
		if err := srv.Stop(); err != nil {
			log.Print(err)
		}
		os.RemoveAll(dir)
	}
}

// Send returns once the server has processed the message; filehub serve
// answers every message with an echo, which arrives on Messages.
func ExampleDial() {
	srv, stop := exampleServer()
	defer stop()

	ctx := context.Background()
	c, err := wsclient.Dial(ctx, srv.URL(), wsclient.Options{Key: srv.key})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if err := c.Send(ctx, map[string]string{"hello": "filehub"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("acknowledged")
	fmt.Printf("echo: %s\n", <-c.Messages())
	// Output:
	// acknowledged
	// echo: {"hello":"filehub"}
}

// A permanent failure, such as an unknown key, is returned by Dial instead
// of being retried forever.
func ExampleDial_badKey() {
	srv, stop := exampleServer()
	defer stop()

	_, err := wsclient.Dial(context.Background(), srv.URL(), wsclient.Options{Key: "fhk_unknown"})
	var ce *wsclient.ConnError
	if errors.As(err, &ce) {
		fmt.Println("permanent:", ce.Permanent, "HTTP status:", ce.Status, "code:", filehub.ErrorCode(err))
	}
	// Output:
	// permanent: true HTTP status: 401 code: unauthorized
}

// Subscribe delivers every event after the given id exactly once, in order,
// across reconnects and server restarts.
func ExampleClient_Subscribe() {
	srv, stop := exampleServer()
	defer stop()
	for _, name := range []string{"report.pdf", "notes.txt"} {
		if _, err := srv.Upload(name); err != nil {
			log.Fatal(err)
		}
	}

	ctx := context.Background()
	c, err := wsclient.Dial(ctx, srv.URL(), wsclient.Options{Key: srv.key, IgnoreMessages: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	errEnough := errors.New("enough")
	seen := 0
	err = c.Subscribe(ctx, 0, func(ev filehub.Event) error {
		fmt.Println(ev.ID, ev.Type, ev.File.Name)
		if seen++; seen == 2 {
			return errEnough // ends the subscription
		}
		return nil
	})
	fmt.Println(errors.Is(err, errEnough))
	// Output:
	// 1 file.created report.pdf
	// 2 file.created notes.txt
	// true
}

// Call and its wrappers return the server's errors as *filehub.Error.
func ExampleClient_StatFile() {
	srv, stop := exampleServer()
	defer stop()
	f, err := srv.Upload("a.txt")
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	c, err := wsclient.Dial(ctx, srv.URL(), wsclient.Options{Key: srv.key})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	got, err := c.StatFile(ctx, f.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Name, got.Size)
	_, err = c.StatFile(ctx, "f_nonexistent")
	fmt.Println(errors.Is(err, filehub.ErrNotFound))
	// Output:
	// a.txt 16
	// true
}

// OnStateChange sees every state change, in order.
func ExampleOptions_onStateChange() {
	srv, stop := exampleServer()
	defer stop()

	c, err := wsclient.Dial(context.Background(), srv.URL(), wsclient.Options{
		Key: srv.key,
		OnStateChange: func(old, new wsclient.State) {
			fmt.Println(old, "->", new)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	c.Close()
	fmt.Println(c.Err())
	// Output:
	// connecting -> connected
	// connected -> closed
	// wsclient: client closed
}
