// SPDX-License-Identifier: Apache-2.0
#include "engine/tlsidentity.h"

#include "certs/certs.h"

#include <QtCore/QFile>
#include <QtNetwork/QSslCipher>
#include <QtNetwork/QSslKey>
#include <QtNetwork/QSslSocket>

namespace dengine::engine {

QString TlsIdentity::memberName(quint64 node, quint64 cluster) { return QString::fromStdString(certs::memberName(node, cluster)); }

quint64 TlsIdentity::memberOf(const QSslCertificate &certificate, quint64 cluster)
{
    // The DNS alternative names (what a member's certificate carries), else the common name.
    QStringList names = certificate.subjectAlternativeNames().values(QSsl::DnsEntry);
    if (names.isEmpty())
        names = certificate.subjectInfo(QSslCertificate::CommonName);
    const QString suffix = QStringLiteral(".c%1.dengine").arg(cluster);
    for (const QString &name : names) {
        if (!name.startsWith(QLatin1Char('n')) || !name.endsWith(suffix))
            continue;
        bool ok = false;
        const quint64 node = name.mid(1, name.size() - 1 - suffix.size()).toULongLong(&ok);
        if (ok && node != 0 && name == memberName(node, cluster))
            return node;
    }
    return 0;
}

void TlsIdentity::acceptAnyMemberName(QSslSocket *socket)
{
    QObject::connect(socket, &QSslSocket::sslErrors, socket, [socket](const QList<QSslError> &errors) {
        QList<QSslError> nameOnly;
        for (const QSslError &e : errors)
            if (e.error() == QSslError::HostNameMismatch)
                nameOnly << e;
        if (nameOnly.size() == errors.size())
            socket->ignoreSslErrors(nameOnly);
    });
}

std::shared_ptr<const TlsIdentity> TlsIdentity::load(const DEngineConfig &config, QString *error)
{
    return loadFiles(config.tlsCaFile, config.tlsCertificateFile, config.tlsKeyFile, config.clusterId,
                     certs::memberName(config.nodeId, config.clusterId), error);
}

std::shared_ptr<const TlsIdentity> TlsIdentity::loadClient(const QString &caFile, const QString &certificateFile, const QString &keyFile,
                                                           quint64 cluster, QString *error)
{
    return loadFiles(caFile, certificateFile, keyFile, cluster, {}, error);
}

std::shared_ptr<const TlsIdentity> TlsIdentity::loadFiles(const QString &caFile, const QString &certificateFile, const QString &keyFile,
                                                          quint64 cluster, const std::string &expectedName, QString *error)
{
    const auto fail = [&](const QString &why) -> std::shared_ptr<const TlsIdentity> {
        if (error)
            *error = why;
        return nullptr;
    };
    if (!QSslSocket::supportsSsl())
        return fail(QStringLiteral("TLS: this Qt has no TLS backend (the OpenSSL plugin); install it, or set insecure"));
    // The checks a peer will make, first, with a message naming the file.
    std::string why;
    if (!certs::checkMember(caFile.toStdString(), certificateFile.toStdString(), keyFile.toStdString(), expectedName, &why))
        return fail(QStringLiteral("TLS: %1").arg(QString::fromStdString(why)));
    const QList<QSslCertificate> authorities = QSslCertificate::fromPath(caFile, QSsl::Pem);
    const QList<QSslCertificate> own = QSslCertificate::fromPath(certificateFile, QSsl::Pem);
    QFile keyIn(keyFile);
    if (authorities.isEmpty() || own.isEmpty() || !keyIn.open(QIODevice::ReadOnly))
        return fail(QStringLiteral("TLS: cannot load %1, %2 or %3").arg(caFile, certificateFile, keyFile));
    const QByteArray keyPem = keyIn.readAll();
    QSslKey key(keyPem, QSsl::Ec, QSsl::Pem);
    if (key.isNull())
        key = QSslKey(keyPem, QSsl::Rsa, QSsl::Pem);
    if (key.isNull())
        return fail(QStringLiteral("TLS: key file %1: not an EC or RSA private key Qt can use").arg(keyFile));

    auto identity = std::make_shared<TlsIdentity>();
    identity->m_cluster = cluster;
    QSslConfiguration c = QSslConfiguration::defaultConfiguration();
    c.setProtocol(QSsl::TlsV1_3OrLater);
    // AES-128-GCM first (then ChaCha20 for machines without AES instructions): the cheapest of the
    // TLS 1.3 suites per record, and Raft's records are many and small. AES-256 stays allowed.
    const QList<QSslCipher> preferred{QSslCipher(QStringLiteral("TLS_AES_128_GCM_SHA256")), QSslCipher(QStringLiteral("TLS_CHACHA20_POLY1305_SHA256")),
                                      QSslCipher(QStringLiteral("TLS_AES_256_GCM_SHA384"))};
    QList<QSslCipher> usable;
    for (const QSslCipher &cipher : preferred)
        if (!cipher.isNull())
            usable << cipher;
    if (!usable.isEmpty())
        c.setCiphers(usable);
    c.setPeerVerifyMode(QSslSocket::VerifyPeer); // both ways: a client certificate is required too
    c.setCaCertificates(authorities);            // this cluster's authority, not the system's
    c.setLocalCertificate(own.front());
    c.setLocalCertificateChain(own);
    c.setPrivateKey(key);
    identity->m_configuration = c;
    return identity;
}

} // namespace dengine::engine
