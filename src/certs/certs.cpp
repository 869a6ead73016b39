// SPDX-License-Identifier: Apache-2.0
#include "certs/certs.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

namespace dengine::certs {

namespace {

struct Free {
    void operator()(EVP_PKEY *p) const { EVP_PKEY_free(p); }
    void operator()(X509 *p) const { X509_free(p); }
    void operator()(BIGNUM *p) const { BN_free(p); }
    void operator()(FILE *p) const { std::fclose(p); }
};
template <typename T> using Owned = std::unique_ptr<T, Free>;

std::string openSslError(const std::string &what)
{
    const unsigned long code = ERR_get_error();
    char text[256] = {};
    if (code)
        ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    return what + (code ? std::string(": ") + text : std::string());
}

bool fail(std::string *error, const std::string &why)
{
    if (error)
        *error = why;
    return false;
}

bool exists(const std::string &path) { return ::access(path.c_str(), F_OK) == 0; }

// Opens a new file for writing (never an existing one), with `mode`.
Owned<FILE> create(const std::string &path, mode_t mode, std::string *error)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        fail(error, path + ": cannot create: " + std::string(std::strerror(errno)));
        return nullptr;
    }
    FILE *f = ::fdopen(fd, "w");
    if (!f) {
        ::close(fd);
        fail(error, path + ": cannot open for writing");
    }
    return Owned<FILE>(f);
}

Owned<EVP_PKEY> newKey() { return Owned<EVP_PKEY>(EVP_EC_gen("P-256")); }

bool addExtension(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext)
        return false;
    const bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

// A certificate for `key` named `name`, signed by `issuerKey` as `issuer` (itself when null).
Owned<X509> makeCertificate(EVP_PKEY *key, const std::string &name, X509 *issuer, EVP_PKEY *issuerKey, bool authority, int days,
                            int notBeforeDays)
{
    Owned<X509> cert(X509_new());
    if (!cert)
        return nullptr;
    X509_set_version(cert.get(), 2);
    Owned<BIGNUM> serial(BN_new());
    if (!serial || !BN_rand(serial.get(), 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY)
        || !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())))
        return nullptr;
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(notBeforeDays) * 86400 - 300);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(notBeforeDays + days) * 86400);
    X509_NAME *subject = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char *>("DEngine"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char *>(name.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject);
    X509_set_pubkey(cert.get(), key);
    X509 *signer = issuer ? issuer : cert.get();
    bool ok = addExtension(cert.get(), signer, NID_subject_key_identifier, "hash")
        && addExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
    if (authority) {
        ok = ok && addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")
            && addExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        const std::string san = "DNS:" + name;
        ok = ok && addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE")
            && addExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature")
            && addExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth")
            && addExtension(cert.get(), signer, NID_subject_alt_name, san.c_str());
    }
    if (!ok || !X509_sign(cert.get(), issuerKey ? issuerKey : key, EVP_sha256()))
        return nullptr;
    return cert;
}

bool writePair(X509 *cert, EVP_PKEY *key, const std::string &certPath, const std::string &keyPath, std::string *error)
{
    Owned<FILE> keyFile = create(keyPath, 0600, error);
    if (!keyFile)
        return false;
    if (!PEM_write_PrivateKey(keyFile.get(), key, nullptr, nullptr, 0, nullptr, nullptr))
        return fail(error, openSslError(keyPath + ": cannot write the key"));
    Owned<FILE> certFile = create(certPath, 0644, error);
    if (!certFile)
        return false;
    if (!PEM_write_X509(certFile.get(), cert))
        return fail(error, openSslError(certPath + ": cannot write the certificate"));
    return true;
}

} // namespace

std::string memberName(std::uint64_t node, std::uint64_t cluster)
{
    return "n" + std::to_string(node) + ".c" + std::to_string(cluster) + ".dengine";
}

bool createAuthority(const std::string &dir, const Options &options, std::string *error)
{
    if (options.cluster == 0)
        return fail(error, "the cluster id must not be 0");
    const std::string certPath = dir + "/ca.pem", keyPath = dir + "/ca.key";
    if (exists(certPath) || exists(keyPath))
        return fail(error, (exists(certPath) ? certPath : keyPath) + ": exists already (not overwritten)");
    Owned<EVP_PKEY> key = newKey();
    if (!key)
        return fail(error, openSslError("cannot make a key"));
    const std::string name = "DEngine cluster " + std::to_string(options.cluster) + " authority";
    Owned<X509> cert = makeCertificate(key.get(), name, nullptr, nullptr, true, options.days, options.notBeforeDays);
    if (!cert)
        return fail(error, openSslError("cannot make the authority's certificate"));
    return writePair(cert.get(), key.get(), certPath, keyPath, error);
}

bool createCertificate(const std::string &caCertPath, const std::string &caKeyPath, const std::string &certPath, const std::string &keyPath,
                       const std::string &name, int days, int notBeforeDays, std::string *error)
{
    if (exists(certPath) || exists(keyPath))
        return fail(error, (exists(certPath) ? certPath : keyPath) + ": exists already (not overwritten)");
    Owned<FILE> caFile(std::fopen(caCertPath.c_str(), "r"));
    if (!caFile)
        return fail(error, caCertPath + ": cannot read: " + std::string(std::strerror(errno)));
    Owned<X509> ca(PEM_read_X509(caFile.get(), nullptr, nullptr, nullptr));
    if (!ca)
        return fail(error, openSslError(caCertPath + ": not a PEM certificate"));
    Owned<FILE> caKeyFile(std::fopen(caKeyPath.c_str(), "r"));
    if (!caKeyFile)
        return fail(error, caKeyPath + ": cannot read: " + std::string(std::strerror(errno)));
    Owned<EVP_PKEY> caKey(PEM_read_PrivateKey(caKeyFile.get(), nullptr, nullptr, nullptr));
    if (!caKey)
        return fail(error, openSslError(caKeyPath + ": not a PEM private key"));
    if (X509_check_private_key(ca.get(), caKey.get()) != 1)
        return fail(error, caKeyPath + ": is not the key of " + caCertPath);
    Owned<EVP_PKEY> key = newKey();
    if (!key)
        return fail(error, openSslError("cannot make a key"));
    Owned<X509> cert = makeCertificate(key.get(), name, ca.get(), caKey.get(), false, days, notBeforeDays);
    if (!cert)
        return fail(error, openSslError("cannot make the certificate"));
    return writePair(cert.get(), key.get(), certPath, keyPath, error);
}

bool createMember(const std::string &dir, std::uint64_t node, const Options &options, std::string *error)
{
    if (node == 0 || options.cluster == 0)
        return fail(error, "the node id and the cluster id must not be 0");
    const std::string base = dir + "/node-" + std::to_string(node);
    return createCertificate(dir + "/ca.pem", dir + "/ca.key", base + ".pem", base + ".key", memberName(node, options.cluster),
                             options.days, options.notBeforeDays, error);
}

std::string clientName(const std::string &name, std::uint64_t cluster) { return name + ".client.c" + std::to_string(cluster) + ".dengine"; }

bool createClient(const std::string &dir, const std::string &name, const Options &options, std::string *error)
{
    if (name.empty() || name.size() > 64
        || !std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }))
        return fail(error, "client name \"" + name + "\": use 1 to 64 letters, digits, '-' or '_'");
    if (options.cluster == 0)
        return fail(error, "the cluster id must not be 0");
    const std::string base = dir + "/client-" + name;
    return createCertificate(dir + "/ca.pem", dir + "/ca.key", base + ".pem", base + ".key", clientName(name, options.cluster), options.days,
                             options.notBeforeDays, error);
}

bool checkMember(const std::string &caPath, const std::string &certPath, const std::string &keyPath, const std::string &expectedName,
                 std::string *error)
{
    const auto readable = [&](const std::string &path, const char *what) -> Owned<FILE> {
        Owned<FILE> f(std::fopen(path.c_str(), "r"));
        if (!f)
            fail(error, std::string(what) + " " + path + ": cannot read: " + std::strerror(errno));
        return f;
    };
    Owned<FILE> caFile = readable(caPath, "authority file");
    if (!caFile)
        return false;
    std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), &X509_STORE_free);
    int authorities = 0;
    while (X509 *ca = PEM_read_X509(caFile.get(), nullptr, nullptr, nullptr)) {
        X509_STORE_add_cert(store.get(), ca);
        X509_free(ca);
        ++authorities;
    }
    ERR_clear_error();
    if (authorities == 0)
        return fail(error, "authority file " + caPath + ": holds no PEM certificate");
    Owned<FILE> certFile = readable(certPath, "certificate file");
    if (!certFile)
        return false;
    Owned<X509> cert(PEM_read_X509(certFile.get(), nullptr, nullptr, nullptr));
    if (!cert)
        return fail(error, openSslError("certificate file " + certPath + ": not a PEM certificate"));
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), &X509_STORE_CTX_free);
    if (!ctx || !X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr))
        return fail(error, openSslError("cannot check " + certPath));
    if (X509_verify_cert(ctx.get()) != 1) {
        const int code = X509_STORE_CTX_get_error(ctx.get());
        return fail(error, "certificate file " + certPath + ": " + X509_verify_cert_error_string(code)
                               + (code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
                                          || code == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
                                      ? " (it is not signed by the authority in " + caPath + ")"
                                      : std::string()));
    }
    if (!expectedName.empty() && X509_check_host(cert.get(), expectedName.c_str(), expectedName.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) != 1) {
        char cn[256] = {};
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
        return fail(error, "certificate file " + certPath + ": it names " + (cn[0] ? std::string(cn) : std::string("nothing")) + ", not "
                               + expectedName + " (this node and cluster)");
    }
    Owned<FILE> keyFile = readable(keyPath, "key file");
    if (!keyFile)
        return false;
    Owned<EVP_PKEY> key(PEM_read_PrivateKey(keyFile.get(), nullptr, nullptr, nullptr));
    if (!key)
        return fail(error, openSslError("key file " + keyPath + ": not a PEM private key (or it is encrypted)"));
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        ERR_clear_error();
        return fail(error, "key file " + keyPath + ": it is not the key of the certificate in " + certPath);
    }
    return true;
}

} // namespace dengine::certs
