import Foundation
import Namespace

/// Friends over HTTP (openapi/namespace.yaml, SMP draft §6.2.2): a device asks another user to
/// become a contact; any device of that user sees the request in its heartbeat answers and
/// confirms (or declines) it; either side ends the friendship. And the user's scenarios (SMP
/// draft §3.2.1). Every route is for a registered device and acts for the device's own user only.
extension NamespaceRoutes {
    var contactRoutes: [String: HTTPEndpoint.Handler] {
        [
            "GET /v1/contacts": { request in
                await asDevice(request) { did in ContactList(user: did.user, contacts: try await service.contacts(of: did.user)) }
            },
            "DELETE /v1/contacts": { request in
                await asDevice(request) { did in
                    guard let text = request.query["uid"] else { throw NamespaceError.invalid("give ?uid=EMAIL (the contact to remove)") }
                    try await service.removeContact(try UserID(text), by: did)
                    return ContactList(user: did.user, contacts: try await service.contacts(of: did.user))
                }
            },
            "PUT /v1/contacts/name": { request in
                await asDevice(request, ContactRename.self) { did, body in
                    _ = try await service.renameContact(body.user, to: body.name, by: did, atMillis: body.atMillis)
                    return ContactList(user: did.user, contacts: try await service.contacts(of: did.user))
                }
            },
            "POST /v1/contacts/requests": { request in
                await asDevice(request, ContactRequest.self, status: .created) { did, body in
                    try await service.requestContact(body.user, by: did, name: body.name)
                }
            },
            "GET /v1/contacts/requests": { request in
                await asDevice(request) { did in
                    IntroductionList(incoming: try await service.contactRequests(of: did.user, incoming: true),
                                     outgoing: try await service.contactRequests(of: did.user, incoming: false))
                }
            },
            "DELETE /v1/contacts/requests": { request in
                await asDevice(request) { did in
                    guard let text = request.query["id"], let id = Int64(text) else {
                        throw NamespaceError.invalid("give ?id=N (the request's id)")
                    }
                    return try await service.dropContactRequest(id, by: did)
                }
            },
            "GET /v1/scenarios": { request in await asDevice(request) { did in try await service.scenarios(of: did.user) } },
            "PUT /v1/scenarios": { request in
                await asDevice(request, ScenarioEdit.self) { did, edit in
                    try await service.setScenario(edit.name, to: edit.scenario, by: did, atMillis: edit.atMillis)
                    return try await service.scenarios(of: did.user)
                }
            },
            "PUT /v1/scenarios/active": { request in
                await asDevice(request, ScenarioChoice.self) { did, choice in
                    try await service.chooseScenario(choice.name, by: did, atMillis: choice.atMillis)
                    return try await service.scenarios(of: did.user)
                }
            },
            "POST /v1/contacts/accept": { request in
                await asDevice(request, ContactAccept.self) { did, body in
                    let contact = try await service.acceptContact(body.id, by: did, name: body.name)
                    return ContactList(user: did.user, contacts: try await service.contacts(of: did.user).filter { $0.user == contact.user })
                }
            },
        ]
    }
}
