// The Go baseline of `make bench-webhook`: a minimal admission webhook on
// controller-runtime's webhook/admission, as a Go team would write one. It
// decodes the AdmissionReview, unmarshals the object, and allows it; /mutate
// answers the same (no patch). TLS 1.2+ with the same certificate as ecskube.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"log"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

type allowAfterDecoding struct{}

func (allowAfterDecoding) Handle(_ context.Context, req admission.Request) admission.Response {
	var obj unstructured.Unstructured
	if err := obj.UnmarshalJSON(req.Object.Raw); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	return admission.Allowed("")
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9443", "address")
	cert := flag.String("tls-cert", "tls.crt", "PEM certificate")
	key := flag.String("tls-key", "tls.key", "PEM key")
	flag.Parse()

	mux := http.NewServeMux()
	for _, path := range []string{"/validate", "/mutate"} {
		mux.Handle(path, &admission.Webhook{Handler: allowAfterDecoding{}})
	}
	server := &http.Server{
		Addr:              *listen,
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Fatal(server.ListenAndServeTLS(*cert, *key))
}
