// Registers Standby with Azure Monitor for one deployment of AI hubs: an action group whose
// webhook receiver points at Standby with the common alert schema on, and the alert rules that
// feed it (a metric alert on each hub workspace, a Service Health alert for the hubs' regions and
// services, a Resource Health alert for the hubs' resources).
//
//   az deployment group create --resource-group ops --template-file deploy/azure/main.bicep \
//     --parameters standbyUrl=https://standby.example.net webhookToken=$STANDBY_WEBHOOK_TOKEN \
//                  hubWorkspaceIds='["/subscriptions/.../workspaces/hub-eastus"]'

targetScope = 'resourceGroup'

@description('Base URL where Standby is reachable from Azure Monitor (https).')
param standbyUrl string

@secure()
@description('One of Standby\'s auth.webhookTokens. Ignored when useSecureWebhook is true.')
param webhookToken string = ''

@description('Use Azure Monitor Secure Webhook (Entra ID bearer token) instead of ?token=.')
param useSecureWebhook bool = false

@description('Secure Webhook: object ID of the Entra ID application that represents Standby.')
param secureWebhookObjectId string = ''

@description('Secure Webhook: application ID URI of that application.')
param secureWebhookIdentifierUri string = ''

@description('Secure Webhook: tenant of that application.')
param secureWebhookTenantId string = subscription().tenantId

@description('ARM IDs of the hub workspaces (Microsoft.MachineLearningServices/workspaces).')
param hubWorkspaceIds array

@description('Region display names as Service Health names them, one per hub.')
param hubRegionNames array = [
  'East US'
  'West US'
]

@description('Services whose incidents mean a hub is down (policy.alerts.serviceHealthServices).')
param serviceHealthServices array = [
  'Azure Machine Learning'
  'Azure AI Foundry'
]

@description('Name of the metric alert rule; list it in policy.alerts.failoverRules so that it means DOWN.')
param availabilityRuleName string = 'hub-availability'

@description('Workspace metric watched by the availability rule, and its threshold.')
param availabilityMetricName string = 'Model Deploy Failed'
param availabilityThreshold int = 0

param actionGroupName string = 'standby'
param tags object = {}

var webhookUri = useSecureWebhook
  ? '${standbyUrl}/webhooks/azure-monitor'
  : '${standbyUrl}/webhooks/azure-monitor?token=${webhookToken}'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'standby'
    enabled: true
    webhookReceivers: [
      {
        name: 'standby'
        serviceUri: webhookUri
        useCommonAlertSchema: true
        useAadAuth: useSecureWebhook
        objectId: useSecureWebhook ? secureWebhookObjectId : null
        identifierUri: useSecureWebhook ? secureWebhookIdentifierUri : null
        tenantId: useSecureWebhook ? secureWebhookTenantId : null
      }
    ]
  }
}

resource availability 'Microsoft.Insights/metricAlerts@2018-03-01' = [for (workspaceId, index) in hubWorkspaceIds: {
  name: '${availabilityRuleName}-${index}'
  location: 'global'
  tags: tags
  properties: {
    description: 'A hub workspace is failing; Standby treats ${availabilityRuleName} as DOWN.'
    severity: 1
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'failures'
          metricName: availabilityMetricName
          operator: 'GreaterThan'
          threshold: availabilityThreshold
          timeAggregation: 'Total'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}]

resource serviceHealth 'Microsoft.Insights/activityLogAlerts@2020-10-01' = {
  name: 'hubs-service-health'
  location: 'global'
  tags: tags
  properties: {
    description: 'Service Health incidents and maintenance for the hubs\' services and regions.'
    enabled: true
    scopes: [
      subscription().id
    ]
    condition: {
      allOf: [
        {
          field: 'category'
          equals: 'ServiceHealth'
        }
        {
          field: 'properties.impactedServices[*].ServiceName'
          containsAny: serviceHealthServices
        }
        {
          field: 'properties.impactedServices[*].ImpactedRegions[*].RegionName'
          containsAny: hubRegionNames
        }
      ]
    }
    actions: {
      actionGroups: [
        {
          actionGroupId: actionGroup.id
        }
      ]
    }
  }
}

resource resourceHealth 'Microsoft.Insights/activityLogAlerts@2020-10-01' = {
  name: 'hubs-resource-health'
  location: 'global'
  tags: tags
  properties: {
    description: 'Resource Health transitions of the hub workspaces.'
    enabled: true
    scopes: hubWorkspaceIds
    condition: {
      allOf: [
        {
          field: 'category'
          equals: 'ResourceHealth'
        }
        {
          anyOf: [
            {
              field: 'properties.currentHealthStatus'
              equals: 'Unavailable'
            }
            {
              field: 'properties.currentHealthStatus'
              equals: 'Degraded'
            }
            {
              field: 'properties.currentHealthStatus'
              equals: 'Available'
            }
          ]
        }
      ]
    }
    actions: {
      actionGroups: [
        {
          actionGroupId: actionGroup.id
        }
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
