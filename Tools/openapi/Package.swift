// swift-tools-version:6.1
// Builds swift-openapi-generator for scripts/generate-openapi.sh. Never built by the server or CI.
import PackageDescription

let package = Package(
    name: "openapi-tools",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator.git", exact: "1.14.3")
    ],
    targets: []
)
