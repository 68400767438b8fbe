package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/filehub/filehub"
)

// ParseTrustedProxies parses a list of CIDRs (or single addresses) of
// reverse proxies whose forwarding headers are believed. Returns EINVALID
// naming the first bad entry.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, filehub.Errorf(filehub.EINVALID, "trusted proxy %q: want a CIDR (10.0.0.0/8) or an address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ClientAddr is the address failed authentications are charged to: the
// peer's IP, or, when the peer is one of Config.TrustedProxies, the
// address those proxies say the request came from. The forwarding chain
// (Forwarded, else X-Forwarded-For) is read from the right: each trusted
// proxy appends the address it received the request from, so the first
// entry from the right that is not itself a trusted proxy is the client;
// the entries left of it are whatever the client sent and are ignored. An
// entry that is not an address (Forwarded's "unknown", garbage) stops the
// walk, and the request is charged to the last trusted hop: a proxy that
// does not say who its client is shares one budget.
func (a *Authenticator) ClientAddr(r *http.Request) string {
	peer := peerAddr(r)
	ip, err := netip.ParseAddr(peer)
	if err != nil || !a.trusted(ip) {
		return peer
	}
	chain := forwardChain(r.Header)
	client := ip
	for i := len(chain) - 1; i >= 0; i-- {
		hop, ok := parseHop(chain[i])
		if !ok {
			break
		}
		client = hop
		if !a.trusted(hop) {
			break
		}
	}
	return client.String()
}

// ClientAddr is the peer's IP, ignoring forwarding headers: the address
// without any trusted proxy (Authenticator.ClientAddr with none).
func ClientAddr(r *http.Request) string { return peerAddr(r) }

func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String()
	}
	return host
}

func (a *Authenticator) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardChain returns the forwarding chain, oldest hop first: the for=
// parameters of every Forwarded element if there is a Forwarded header,
// else the entries of X-Forwarded-For. Several header lines are one list,
// in order (RFC 9110 5.3).
func forwardChain(h http.Header) []string {
	var out []string
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				found := ""
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						found = strings.Trim(v, `"`)
					}
				}
				out = append(out, found) // "" for an element without for=: not an address
			}
		}
		return out
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, e := range strings.Split(line, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// parseHop parses one hop of a forwarding chain: an address, an address
// with a port, or (Forwarded) a bracketed IPv6 address with or without a
// port.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
