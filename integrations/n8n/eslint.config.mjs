import { config } from '@n8n/node-cli/eslint';

// The community-node starter's rules, less three that are about n8n Cloud's
// verified-package programme, which does not apply to a self-hosted gateway's
// nodes: the signature check uses the Standard Webhooks reference library
// (its only runtime dependency, on purpose), and wabridge is Apache-2.0.
export default [
	...config,
	{
		rules: {
			'@n8n/community-nodes/no-restricted-imports': 'off',
			'@n8n/community-nodes/no-runtime-dependencies': 'off',
			'n8n-nodes-base/community-package-json-license-not-default': 'off',
		},
	},
];
