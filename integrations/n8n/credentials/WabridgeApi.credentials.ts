import type {
	IAuthenticateGeneric,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/** One wabridge account: the gateway's address and the account's API key. */
export class WabridgeApi implements ICredentialType {
	name = 'wabridgeApi';

	displayName = 'Wabridge API';

	icon = 'file:wabridge.svg' as const;

	documentationUrl = 'https://github.com/wabridge/wabridge/blob/main/integrations/n8n/README.md';

	properties: INodeProperties[] = [
		{
			displayName: 'Gateway URL',
			name: 'url',
			type: 'string',
			default: '',
			placeholder: 'https://wabridge.example.com',
			description: 'The address of the wabridge gateway, as n8n reaches it',
			required: true,
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: "The account's API key, shown once when the account was added in the backoffice",
			required: true,
		},
		{
			displayName: 'Allow Self-Signed Certificate',
			name: 'ignoreSslIssues',
			type: 'boolean',
			default: false,
			description:
				"Whether to accept the gateway's self-signed certificate (a first install); the connection is then not authenticated",
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiKey}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.url.replace(/\\/+$/, "")}}',
			url: '/api/v1/me',
			method: 'GET',
			skipSslCertificateValidation: '={{$credentials.ignoreSslIssues}}',
		},
	};
}
