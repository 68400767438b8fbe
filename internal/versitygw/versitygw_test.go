package versitygw_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"

	"github.com/filehub/filehub/internal/versitygw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStart builds the gateway if needed (.ci/run runs this test first,
// so that the build's time shows on its own line of the log), starts it,
// and round-trips an object through its S3 API: the object lands as a
// file under the posix root, which proves the gateway is the posix one
// and not some other S3 endpoint answering on the port.
func TestStart(t *testing.T) {
	g := versitygw.Start(t)
	bucket := g.CreateBucket(t)
	data := []byte("stored by the real S3 server")
	_, err := g.Client().PutObject(t.Context(), &awss3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("dir/obj"), Body: bytes.NewReader(data),
	})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := g.Client().GetObject(t.Context(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/obj")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetObject = %q, %v", got, err)
	}
	onDisk, err := os.ReadFile(filepath.Join(g.Root, bucket, "dir", "obj"))
	if err != nil || !bytes.Equal(onDisk, data) {
		t.Fatalf("posix file = %q, %v; want the object's bytes", onDisk, err)
	}
}
