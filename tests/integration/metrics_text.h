#pragma once

// Scraping /metrics over plain HTTP and reading the text exposition format, for tests of the
// Prometheus target and of the CLI's --metrics-port.

#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace kvevents::test {

// GET /metrics on 127.0.0.1:port; the response body.
inline std::string scrape(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    const std::string request =
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    std::string response;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;)
        response.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    const auto body = response.find("\r\n\r\n");
    EXPECT_NE(body, std::string::npos) << response;
    EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response.substr(0, 80);
    return body == std::string::npos ? std::string() : response.substr(body + 4);
}

// Samples of the text exposition format: `name{labels} value` -> value; comments skipped.
inline std::map<std::string, double> parse_samples(const std::string& text) {
    std::map<std::string, double> samples;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] == '#')
            continue;
        const auto space = line.rfind(' ');
        EXPECT_NE(space, std::string::npos) << line;
        samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return samples;
}

inline std::optional<double> value_of(const std::map<std::string, double>& samples,
                                      const std::string& series) {
    const auto it = samples.find(series);
    if (it == samples.end())
        return std::nullopt;
    return it->second;
}

}  // namespace kvevents::test
