package api_test

import (
	"fmt"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// The one table, both ways: a server sends an error's code with its status,
// a client that got no problem document maps the status back.
func ExampleStatusCode() {
	fmt.Println(api.StatusCode(filehub.ENOTFOUND))
	fmt.Println(api.CodeForStatus(429))
	fmt.Println(api.ProblemType(filehub.ECONFLICT))
	// Output:
	// 404
	// rate_limited
	// urn:filehub:error:conflict
}
