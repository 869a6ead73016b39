// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

namespace dengine::certs {

// Certificates for a DEngine cluster (OpenSSL): one certificate authority per cluster, and one
// certificate per member, signed by it, that names the member: its subject CN and its only DNS
// subject alternative name are memberName(node, cluster). Every node presents its own and checks
// its peer's against the member it claims to be, so a certificate of another member, of another
// cluster or of another authority does not pass for a member.
//
// Keys are ECDSA P-256 (fast handshakes); certificates are X.509 v3, SHA-256 signed, valid for
// server and client authentication. Private keys are written with mode 0600.

// "n<node>.c<cluster>.dengine": the name a member's certificate carries.
std::string memberName(std::uint64_t node, std::uint64_t cluster);

struct Options {
    std::uint64_t cluster = 0;
    int days = 825;          // validity from now (negative with `notBeforeDays` for tests: expired)
    int notBeforeDays = 0;   // validity starts this many days from now (negative: in the past)
};

// Creates DIR/ca.pem (the authority's certificate) and DIR/ca.key. Refuses to overwrite either.
// On failure returns false and sets *error (naming the file).
bool createAuthority(const std::string &dir, const Options &options, std::string *error);

// Creates DIR/node-<node>.pem and DIR/node-<node>.key, signed by DIR/ca.pem and DIR/ca.key.
// Refuses to overwrite. On failure returns false and sets *error (naming the file).
bool createMember(const std::string &dir, std::uint64_t node, const Options &options, std::string *error);

// "<name>.client.c<cluster>.dengine": the name a client's certificate carries (it names no member).
std::string clientName(const std::string &name, std::uint64_t cluster);

// Creates DIR/client-<name>.pem and DIR/client-<name>.key for a client (DEngineClient, the dengine
// command line), signed by DIR/ca.pem and DIR/ca.key: members accept it on their client port, and
// it passes for no member. `name`: letters, digits, '-' and '_'. Refuses to overwrite.
bool createClient(const std::string &dir, const std::string &name, const Options &options, std::string *error);

// The same as createMember, with explicit file names and any authority (tests make strangers' and
// expired certificates this way); `name` overrides the member name when not empty.
bool createCertificate(const std::string &caCertPath, const std::string &caKeyPath, const std::string &certPath,
                       const std::string &keyPath, const std::string &name, int days, int notBeforeDays, std::string *error);

// Checks a member's files before it starts, as its peers will: the authority file holds at least
// one certificate; the certificate is signed by it, valid now (not expired, not yet valid), and
// names `expectedName` (any name when empty); the key file holds the certificate's private key. On failure returns false
// and sets *error to a sentence that names the file at fault.
bool checkMember(const std::string &caPath, const std::string &certPath, const std::string &keyPath, const std::string &expectedName,
                 std::string *error);

} // namespace dengine::certs
