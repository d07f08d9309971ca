import ControlPlane
import Testing

/// Expects `body` to be refused by a control-plane endpoint with `status`, and the reason
/// to contain `fragment` (any reason when empty).
public func expectRefused(_ status: Int, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
                          _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected a \(status) refusal containing '\(fragment)'", sourceLocation: sourceLocation)
    } catch PeerClientError.refused(let got, let reason) {
        #expect(got == status, "\(reason)", sourceLocation: sourceLocation)
        #expect(fragment.isEmpty || reason.contains(fragment), "\(reason)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error: \(error)", sourceLocation: sourceLocation)
    }
}
