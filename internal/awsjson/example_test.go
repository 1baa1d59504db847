package awsjson_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvswebrtc/kvswebrtc/internal/awsjson"
)

// A signed call that the service refuses, and the error it becomes.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.kinesisvideo/")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"The requested stream is not found"}`)
	}))
	defer srv.Close()
	c := awsjson.Client{
		HTTP:    srv.Client(),
		Signer:  v4.NewSigner(),
		Config:  aws.Config{Region: "us-west-2", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")},
		Service: "kinesisvideo",
	}
	resp, err := c.Post(context.Background(), srv.URL+"/", "/listFragments", []byte(`{"StreamName":"cam"}`), time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(awsjson.ErrorText("archive", "ListFragments", resp.StatusCode, awsjson.ErrorCode(resp.Header, body), awsjson.ErrorMessage(body)))
	// Output:
	// archive: ListFragments: HTTP 404 ResourceNotFoundException: The requested stream is not found
}
