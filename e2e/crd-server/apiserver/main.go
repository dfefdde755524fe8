// Command apiextensions-apiserver is the upstream standalone CRD API server
// (k8s.io/apiextensions-apiserver, as Debian packages it) with the two things kubectl
// needs and the stock command leaves out, because kube-apiserver's aggregator normally
// supplies them:
//
//   - root discovery: GET /apis, in the legacy and the aggregated (apidiscovery.k8s.io/v2)
//     form. The stock Complete() turns the generic server's discovery off; it is served
//     here from the generic server's own discovery managers, which the CRD discovery
//     controller keeps up to date with every Established CRD.
//   - CRD schemas in OpenAPI v2 and v3, for `kubectl apply` validation and `kubectl
//     explain`: the stock options set only the v3 config, and without a static v2 spec the
//     server starts neither CRD OpenAPI controller. The v2 config is set here the way the
//     upstream test server (pkg/cmd/server/testing) sets it.
//
// Flags are the stock command's. Used by Flotilla's CRD-server test tier only
// (e2e/crd-server/run.sh): it proves the API surface of the CRDs, not the operator.
package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	aggregateddiscovery "k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/component-base/cli"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	cmd := &cobra.Command{
		Use:   "apiextensions-apiserver",
		Short: "Serve CustomResourceDefinitions and their custom resources, with discovery and OpenAPI",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return o.ServerRunOptions.ComponentGlobalsRegistry.Set()
		},
		RunE: func(c *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return run(c.Context(), o)
		},
	}
	cmd.SetContext(ctx)
	o.AddFlags(cmd.Flags())
	os.Exit(cli.Run(cmd))
}

func run(ctx context.Context, o *options.CustomResourceDefinitionsServerOptions) error {
	config, err := o.Config()
	if err != nil {
		return err
	}
	// OpenAPI v2 next to the v3 the options set: with it PrepareRun builds the static
	// spec, and the server then runs the controllers that publish each CRD's schema.
	definitions := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	config.GenericConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(
		definitions, openapinamer.NewDefinitionNamer(apiserver.Scheme))

	server, err := config.Complete().New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return err
	}
	generic := server.GenericAPIServer
	// GET /apis: the legacy APIGroupList from the group manager InstallAPIGroup fills
	// (apiextensions.k8s.io only), the aggregated list from the manager the CRD discovery
	// controller fills too, so kubectl (which asks for the aggregated form) sees every
	// CRD's group. No peer servers: nil.
	root := aggregateddiscovery.WrapAggregatedDiscoveryToHandler(
		generic.DiscoveryGroupManager, generic.AggregatedDiscoveryGroupManager, nil)
	generic.Handler.GoRestfulContainer.Add(root.GenerateWebService("/apis", metav1.APIGroupList{}))

	return generic.PrepareRun().RunWithContext(ctx)
}
