// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <dengine/dengineconfig.h>

#include <QtNetwork/QSslCertificate>
#include <QtNetwork/QSslConfiguration>

class QSslSocket;

#include <memory>

namespace dengine::engine {

// A node's side of mutual TLS, between nodes (and, with the same code, to clients): TLS 1.3 only;
// its own certificate and key; the cluster's authority as the only one trusted; the peer's
// certificate required and checked against the member it claims to be. A member's certificate
// names it as certs::memberName(node, cluster) (subject CN and DNS alternative name; dengine-ctl
// certs makes them).
//
// Threads: immutable once loaded; share it between threads freely.
class TlsIdentity {
public:
    // Loads and checks the configuration's files as a peer would: readable, parsable, signed by the
    // authority, valid now, naming this node of this cluster, the key the certificate's. On failure
    // returns null and sets *error to a sentence naming the configuration field and the file.
    static std::shared_ptr<const TlsIdentity> load(const DEngineConfig &config, QString *error);
    // A client's (DEngineClient): the same checks, but its certificate may carry any name (a
    // client's, from dengine-ctl certs client, or a member's).
    static std::shared_ptr<const TlsIdentity> loadClient(const QString &caFile, const QString &certificateFile, const QString &keyFile,
                                                         quint64 cluster, QString *error);

    // The configuration for sockets on either side: verification on, the authority only.
    const QSslConfiguration &configuration() const { return m_configuration; }
    quint64 clusterId() const { return m_cluster; }

    static QString memberName(quint64 node, quint64 cluster);
    // For a client dialling a member's client port by address: the member's certificate must be
    // the authority's (the configuration checks that) but cannot name the address dialled, since
    // members are named by id; so a host-name mismatch alone is let through, and after the
    // handshake memberOf(peerCertificate) must name a member of the cluster. Call before connecting.
    static void acceptAnyMemberName(QSslSocket *socket);
    // The member of `cluster` a certificate names, or 0 when it names none (another cluster's, a
    // client's, a stranger's).
    static quint64 memberOf(const QSslCertificate &certificate, quint64 cluster);

private:
    static std::shared_ptr<const TlsIdentity> loadFiles(const QString &caFile, const QString &certificateFile, const QString &keyFile,
                                                        quint64 cluster, const std::string &expectedName, QString *error);
    QSslConfiguration m_configuration;
    quint64 m_cluster = 0;
};

} // namespace dengine::engine
