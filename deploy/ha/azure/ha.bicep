// Standby with no single region to lose: Azure Database for PostgreSQL flexible server with
// zone-redundant high availability (a synchronous standby in another availability zone, automatic
// failover) and a read replica in a second region (asynchronous; promoted by hand or by the
// replica's site-swap when the primary's region is lost), three Standby instances in three regions
// (Azure Container Apps), and the action group with one webhook receiver per instance, so that
// every alert reaches every instance (stored once, counted as a duplicate elsewhere).
//
//   az deployment group create -g standby-ha -f deploy/ha/azure/ha.bicep \
//     -p administratorPassword=... webhookToken=... apiToken=... chainKey=... image=...
targetScope = 'resourceGroup'

@description('Region of the database primary (and its zone-redundant standby).')
param primaryRegion string = 'westeurope'
@description('Region of the read replica: where the database is promoted if the primary region is lost.')
param replicaRegion string = 'northeurope'
@description('Regions of the three Standby instances.')
param instanceRegions array = [
  'westeurope'
  'eastus'
  'westus'
]
param serverName string = 'standby-db'
param administratorLogin string = 'standby'
@secure()
param administratorPassword string
@secure()
param webhookToken string
@secure()
param apiToken string
@secure()
param chainKey string
@description('The Standby container image (the Dockerfile of this repository).')
param image string
param actionGroupName string = 'standby-ha'

resource primary 'Microsoft.DBforPostgreSQL/flexibleServers@2023-06-01-preview' = {
  name: serverName
  location: primaryRegion
  sku: { name: 'Standard_D2ds_v5', tier: 'GeneralPurpose' }
  properties: {
    version: '16'
    administratorLogin: administratorLogin
    administratorLoginPassword: administratorPassword
    storage: { storageSizeGB: 64, autoGrow: 'Enabled' }
    // Zone-redundant HA: a synchronous standby in another zone; a commit is acknowledged once it
    // is on both, so a 2xx from Standby means "in two zones". Failover in 60-120 s, RPO 0.
    highAvailability: { mode: 'ZoneRedundant' }
    backup: { backupRetentionDays: 14, geoRedundantBackup: 'Enabled' }
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2023-06-01-preview' = {
  parent: primary
  name: 'standby'
}

// Asynchronous: what the last seconds before a regional loss committed may be missing from it.
resource replica 'Microsoft.DBforPostgreSQL/flexibleServers@2023-06-01-preview' = {
  name: '${serverName}-replica'
  location: replicaRegion
  sku: { name: 'Standard_D2ds_v5', tier: 'GeneralPurpose' }
  properties: {
    createMode: 'Replica'
    sourceServerResourceId: primary.id
  }
}

var hosts = '${primary.properties.fullyQualifiedDomainName}:5432,${replica.properties.fullyQualifiedDomainName}:5432'

resource environments 'Microsoft.App/managedEnvironments@2023-05-01' = [for region in instanceRegions: {
  name: 'standby-${region}'
  location: region
  properties: {}
}]

resource instances 'Microsoft.App/containerApps@2023-05-01' = [for (region, index) in instanceRegions: {
  name: 'standby-${region}'
  location: region
  properties: {
    managedEnvironmentId: environments[index].id
    configuration: {
      ingress: { external: true, targetPort: 8080 }
      secrets: [
        { name: 'db-password', value: administratorPassword }
        { name: 'webhook-token', value: webhookToken }
        { name: 'api-token', value: apiToken }
        { name: 'chain-key', value: chainKey }
      ]
    }
    template: {
      // One replica per region: the instances in the other regions are the redundancy.
      scale: { minReplicas: 1, maxReplicas: 1 }
      containers: [
        {
          name: 'standby'
          image: image
          args: [ 'serve', '--config', '/etc/standby/ha.yaml' ]
          env: [
            { name: 'STANDBY_INSTANCE', value: 'standby-${region}' }
            { name: 'STANDBY_REGION', value: region }
            { name: 'STANDBY_URL', value: 'https://standby-${region}.${environments[index].properties.defaultDomain}' }
            { name: 'STANDBY_DB_HOSTS', value: hosts }
            { name: 'STANDBY_DB_PASSWORD', secretRef: 'db-password' }
            { name: 'STANDBY_WEBHOOK_TOKEN', secretRef: 'webhook-token' }
            { name: 'STANDBY_API_TOKEN', secretRef: 'api-token' }
            { name: 'STANDBY_AUDIT_CHAIN_KEY', secretRef: 'chain-key' }
          ]
          probes: [
            { type: 'Readiness', httpGet: { path: '/readyz', port: 8080 }, periodSeconds: 5 }
            { type: 'Liveness', httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 10 }
          ]
        }
      ]
    }
  }
}]

// One webhook receiver per instance: Azure Monitor calls each, so an alert still arrives when a
// region (and the instance in it) is down.
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  properties: {
    groupShortName: 'standby'
    enabled: true
    webhookReceivers: [for (region, index) in instanceRegions: {
      name: 'standby-${region}'
      serviceUri: 'https://${instances[index].properties.configuration.ingress.fqdn}/webhooks/azure-monitor?token=${webhookToken}'
      useCommonAlertSchema: true
    }]
  }
}

output actionGroupId string = actionGroup.id
output databaseHosts string = hosts
