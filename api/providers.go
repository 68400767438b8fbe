package api

// PushRequest is the params of providers.push; over HTTP the same two
// values are the path of POST /v1/files/{id}/providers/{provider}.
type PushRequest struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
}

// PushResult is the answer to a push, over HTTP and WebSocket alike.
type PushResult struct {
	Provider       string `json:"provider"`
	ProviderFileID string `json:"provider_file_id"`
	// Reused is true when the provider already had the content, false
	// when this push uploaded it.
	Reused bool `json:"reused"`
}
