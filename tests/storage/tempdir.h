// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace dengine::test {

// A directory under /tmp removed (with its contents) when the object goes out of scope.
class TempDir {
public:
    TempDir()
    {
        char pattern[] = "/tmp/dengine-test-XXXXXX";
        if (!::mkdtemp(pattern))
            throw std::runtime_error("mkdtemp failed");
        m_path = pattern;
    }
    ~TempDir()
    {
        const std::string cmd = "rm -rf '" + m_path + "'";
        [[maybe_unused]] const int rc = std::system(cmd.c_str());
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    const std::string &path() const { return m_path; }

private:
    std::string m_path;
};

} // namespace dengine::test
