import Hummingbird
import StandbyStore

// Views answered directly by hand-written routes.
extension DeploymentView: ResponseEncodable {}
extension FailoverEventView: ResponseEncodable {}
extension CommandView: ResponseEncodable {}
extension FailureWindowView: ResponseEncodable {}
