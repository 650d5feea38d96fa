import AzureMonitor
import Foundation
import StandbyCore
import StandbyPrimitives
import StandbyTestSupport
import Testing

/// What each published payload must decode to, and the quirk it exercises.
struct FixtureExpectation: Sendable, CustomTestStringConvertible {
    var file: String
    var schema: AlertSchema
    var kind: AlertKind
    var condition: AlertCondition
    var check: @Sendable (NormalizedAlert) -> Void = { _ in }

    var testDescription: String { file }
}

let fixtureExpectations: [FixtureExpectation] = [
    .init(file: "common-metric-static-resolved.json", schema: .common, kind: .metric, condition: .resolved) { alert in
        #expect(alert.severity == "Sev3")
        #expect(alert.firedAt == Timestamp.parse("2019-03-22T13:58:24.3713213Z"))
        #expect(alert.resolvedAt == Timestamp.parse("2019-03-22T14:03:16.2246313Z"))
        #expect(alert.targetResourceIDs.first?.normalized.hasSuffix("virtualmachines/wcus-r2-gen2") == true)
    },
    .init(file: "common-log-alerts-v2-fired.json", schema: .common, kind: .log, condition: .fired) { alert in
        #expect(alert.rule == "AcmeRule")
        #expect(alert.monitoringService == "Log Alerts V2")
    },
    .init(file: "test-action-activitylog-administrative.json", schema: .common, kind: .activityLog, condition: .fired),
    .init(file: "test-action-availability-webtest.json", schema: .common, kind: .metric, condition: .fired),
    .init(file: "test-action-budget.json", schema: .common, kind: .budget, condition: .fired) { alert in
        // Budget alerts carry null rule, severity and targets.
        #expect(alert.rule == nil)
        #expect(alert.severity == nil)
        #expect(alert.targetResourceIDs.isEmpty)
    },
    .init(file: "test-action-cost-budget-actual.json", schema: .common, kind: .budget, condition: .fired),
    .init(file: "test-action-cost-budget-forecasted.json", schema: .common, kind: .budget, condition: .fired),
    .init(file: "test-action-log-v1-metric-measurement.json", schema: .common, kind: .log, condition: .fired),
    .init(file: "test-action-log-v1-number-of-results.json", schema: .common, kind: .log, condition: .fired),
    .init(file: "test-action-log-v2.json", schema: .common, kind: .log, condition: .fired),
    .init(file: "test-action-metric-dynamic.json", schema: .common, kind: .metric, condition: .fired),
    .init(file: "test-action-metric-static.json", schema: .common, kind: .metric, condition: .fired),
    .init(file: "test-action-resourcehealth.json", schema: .common, kind: .resourceHealth, condition: .fired) { alert in
        #expect(alert.resourceHealth?.currentHealthStatus == "Unavailable")
        #expect(alert.resourceHealth?.previousHealthStatus == "Available")
        #expect(alert.resourceHealth?.cause == "UserInitiated")
        #expect(alert.resourceHealth?.isPlatformOutage == false)
    },
    .init(file: "test-action-servicehealth.json", schema: .common, kind: .serviceHealth, condition: .resolved) {
        alert in
        // monitorCondition says Fired, but the stage is Resolved; impactedServices is a real array here.
        #expect(alert.serviceHealth?.stage == "Resolved")
        #expect(alert.serviceHealth?.trackingId == "TEST-TTT")
        #expect(alert.serviceHealth?.incidentType == "Incident")
        #expect(
            alert.serviceHealth?.impactedServices == [ImpactedService(service: "AzureServiceName", regions: ["Global"])]
        )
        #expect(alert.isTest)
        #expect(alert.key == "servicehealth:TEST-TTT")
    },
    .init(file: "test-action-smart-alert.json", schema: .common, kind: .smartDetector, condition: .fired),
    .init(file: "legacy-metric-static.json", schema: .metricAlert, kind: .metric, condition: .fired) { alert in
        #expect(alert.severity == "Sev3")
        #expect(alert.rule == "test-metricAlertRule")
        #expect(alert.firedAt == Timestamp.parse("2021-11-15T09:35:12.9703687Z"))
    },
    .init(file: "legacy-log-appinsights-v1.json", schema: .logAlert, kind: .log, condition: .fired) { alert in
        #expect(alert.rule == "AcmeRule")
        #expect(alert.severity == "Sev3")
    },
    .init(
        file: "legacy-activitylog-administrative-noncommon.json", schema: .activityLog, kind: .activityLog,
        condition: .fired
    ) { alert in
        #expect(alert.firedAt == Timestamp.parse("2021-11-16T08:27:36.1836909+00:00"))
    },
    .init(
        file: "legacy-activitylog-resourcehealth-noncommon.json", schema: .activityLog, kind: .resourceHealth,
        condition: .fired
    ) { alert in
        #expect(alert.resourceHealth?.currentHealthStatus == "Unavailable")
        #expect(
            alert.targetResourceIDs.first
                == ResourceID(
                    "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/TEST-rg/providers/microsoft.compute/virtualmachines/test-vm"
                ))
    },
]

@Suite("Azure Monitor payloads")
struct FixtureDecodingTests {
    @Test("every full payload decodes", arguments: fixtureExpectations)
    func decodes(_ expectation: FixtureExpectation) throws {
        let classification = try AzureMonitorDecoder.classify(Fixtures.data(expectation.file))
        guard case .recognized(let alert) = classification else {
            Issue.record("\(expectation.file) was \(classification)")
            return
        }
        #expect(alert.schema == expectation.schema)
        #expect(alert.kind == expectation.kind)
        #expect(alert.condition == expectation.condition)
        expectation.check(alert)
    }

    @Test("every fixture file has an expectation or is a fragment")
    func everyFixtureCovered() {
        let covered = Set(fixtureExpectations.map(\.file))
        for name in Fixtures.allNames where !name.hasPrefix("alertcontext-") {
            #expect(covered.contains(name), "no expectation for \(name)")
        }
        #expect(Fixtures.allNames.count >= 32)
    }

    @Test(
        "a bare alertContext fragment is valid JSON of an unknown shape",
        arguments: Fixtures.allNames.filter { $0.hasPrefix("alertcontext-") })
    func bareFragmentIsUnrecognized(_ file: String) throws {
        let classification = try AzureMonitorDecoder.classify(Fixtures.data(file))
        guard case .unrecognized = classification else {
            Issue.record("\(file) was \(classification)")
            return
        }
    }

    @Test("fragments inside a common envelope take the kind of their service")
    func fragmentsInEnvelope() throws {
        let cases: [(String, String, String, AlertKind, AlertCondition)] = [
            (
                "alertcontext-activitylog-administrative.json", "Activity Log - Administrative", "Activity Log",
                .activityLog, .fired
            ),
            (
                "alertcontext-activitylog-autoscale.json", "Activity Log - Autoscale", "Activity Log", .activityLog,
                .fired
            ),
            ("alertcontext-activitylog-policy.json", "Activity Log - Policy", "Activity Log", .activityLog, .fired),
            ("alertcontext-activitylog-security.json", "Activity Log - Security", "Activity Log", .activityLog, .fired),
            ("alertcontext-log-alerts-v2.json", "Log Alerts V2", "Log", .log, .fired),
            ("alertcontext-log-analytics-v1.json", "Log Analytics", "Log", .log, .fired),
            ("alertcontext-log-appinsights-v1.json", "Application Insights", "Log", .log, .fired),
            ("alertcontext-metric-dynamic-platform.json", "Platform", "Metric", .metric, .fired),
            ("alertcontext-metric-static-platform.json", "Platform", "Metric", .metric, .fired),
            ("alertcontext-metric-webtest-availability.json", "Platform", "Metric", .metric, .fired),
            ("alertcontext-prometheus.json", "Prometheus", "Metric", .prometheus, .fired),
            (
                "alertcontext-resourcehealth-unavailable.json", "Resource Health", "Activity Log", .resourceHealth,
                .fired
            ),
            ("alertcontext-servicehealth-maintenance.json", "ServiceHealth", "Activity Log", .serviceHealth, .fired),
        ]
        for (file, service, signal, kind, condition) in cases {
            let context = try #require(Fixtures.json(file)["alertContext"])
            let body = Fixtures.commonEnvelope(
                alertContext: context, monitoringService: service, signalType: signal,
                targets: ["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"])
            guard case .recognized(let alert) = try AzureMonitorDecoder.classify(body) else {
                Issue.record("\(file) not recognized")
                continue
            }
            #expect(alert.kind == kind, "\(file)")
            #expect(alert.condition == condition, "\(file)")
        }
    }

    @Test("Service Health: impactedServices as an escaped string, numeric enums, planned maintenance")
    func serviceHealthMaintenanceQuirks() throws {
        let context = try #require(Fixtures.json("alertcontext-servicehealth-maintenance.json")["alertContext"])
        let body = Fixtures.commonEnvelope(
            alertContext: context, monitoringService: "ServiceHealth", signalType: "Activity Log")
        guard case .recognized(let alert) = try AzureMonitorDecoder.classify(body) else {
            Issue.record("not recognized")
            return
        }
        let serviceHealth = try #require(alert.serviceHealth)
        #expect(serviceHealth.incidentType == "Maintenance")
        #expect(serviceHealth.stage == "Planned")
        #expect(serviceHealth.isIncident == false)
        #expect(
            serviceHealth.impactedServices == [
                ImpactedService(service: "Azure Synapse Analytics", regions: ["East US"])
            ])
    }
}
